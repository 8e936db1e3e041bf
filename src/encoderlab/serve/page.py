"""The page at GET /: try a served model in a browser. One HTML file, no external assets (works offline).

Texts in, and per kind: the cosine-similarity matrix of their embeddings (text encoders), labels and
probabilities (classifiers), tags (taggers), outputs (seq2seq), anomaly scores (autoencoders: one JSON array
per line), top items (recommenders: one user id per line), labels of chosen audio files (audio classifiers),
labels of table rows (multimodal classifiers: one JSON object per line), and the similarity matrix of texts and
chosen images in one space (image-text models).
"""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>encoderlab serve</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px/1.4 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
textarea{width:100%;height:9rem;font:inherit}select,input,button{font:inherit;margin:.3rem .3rem .3rem 0}
table{border-collapse:collapse;margin-top:1rem}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}
td.t,th.t{text-align:left;max-width:24rem;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
#error{color:#b00020;white-space:pre-wrap}small{color:#666}
</style></head><body>
<h1>encoderlab serve</h1>
<form id="settings"><label>model <select id="model"></select></label> <small id="about"></small><br>
<label>API key <input id="key" type="password" autocomplete="off" placeholder="only if the server has one"></label>
</form>
<textarea id="texts">A man is playing a guitar.
Someone strums a guitar.
The stock market fell sharply today.</textarea>
<p><input id="files" type="file" multiple hidden> <button id="run">Run</button>
<small id="hint">one input per line (autoencoders: one JSON array of numbers per line)</small></p>
<div id="error" role="alert"></div><div id="out"></div>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const ROUTE = {"text-encoder": "/v1/embeddings", "classifier": "/v1/classify", "tagger": "/v1/tag",
               "seq2seq": "/v1/generate", "autoencoder": "/v1/score", "recommender": "/v1/recommend",
               "audio-classifier": "/v1/classify", "multimodal": "/v1/classify", "image-text": "/v1/embeddings"};
const HINT = {"audio-classifier": "choose audio files (.wav, .flac, .ogg)",
              "multimodal": "one JSON object per line with the model's columns",
              "image-text": "one text per line, and images (.png) to choose"};
let models = {};

function headers() {
  const h = {"Content-Type": "application/json"};
  if ($("key").value) h["Authorization"] = "Bearer " + $("key").value;
  return h;
}
async function call(method, path, body) {
  const response = await fetch(path, {method, headers: headers(), body: body && JSON.stringify(body)});
  const data = await response.json();
  if (!response.ok) throw new Error(response.status + ": " + ((data.error || {}).message || response.statusText));
  return data;
}
function cell(tag, text, cls) {
  const c = document.createElement(tag); c.textContent = text; if (cls) c.className = cls; return c;
}
function table(head, rows) {
  const t = document.createElement("table"), tr = document.createElement("tr");
  head.forEach((h, i) => tr.appendChild(cell("th", h, i === 0 ? "t" : "")));
  t.appendChild(tr);
  rows.forEach((row) => {
    const r = document.createElement("tr");
    row.forEach((v, i) => r.appendChild(cell("td", v, i === 0 ? "t" : "")));
    t.appendChild(r);
  });
  return t;
}
async function loadModels() {
  try {
    const list = await call("GET", "/v1/models");
    $("model").textContent = "";
    list.data.forEach((m) => { models[m.id] = m; $("model").appendChild(cell("option", m.id)); });
    const wanted = new URLSearchParams(location.search).get("model");  // /?model=NAME picks one
    if (wanted && models[wanted]) $("model").value = wanted;
    describe();
    const kind = models[$("model").value].kind;
    if (!["autoencoder", "recommender", "audio-classifier", "multimodal"].includes(kind)) await run();  // examples
  } catch (e) { $("error").textContent = e.message; }
}
function describe() {
  const m = models[$("model").value];
  $("about").textContent = m ? m.kind + (m.dimensions ? ", " + m.dimensions + " dimensions" : "") : "";
  const kind = m ? m.kind : "";
  $("files").hidden = kind !== "audio-classifier" && kind !== "image-text";
  $("files").accept = kind === "image-text" ? "image/png" : "audio/*";
  $("hint").textContent = HINT[kind] || "one input per line (autoencoders: one JSON array of numbers per line)";
  if (kind === "multimodal" && m.columns) {
    const row = {};
    [...m.columns.text, ...m.columns.categorical, ...m.columns.numeric].forEach((c) => { row[c] = null; });
    $("texts").value = JSON.stringify(row);
  }
}
function base64Of(file) {  // a chosen file's bytes, as the server's JSON objects carry them
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(",")[1] || "");
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}
async function run() {
  $("error").textContent = ""; $("out").textContent = "";
  const m = models[$("model").value];
  if (!m) { await loadModels(); return; }
  let lines = $("texts").value.split("\\n").filter((l) => l.trim());
  const files = [...$("files").files];
  if (m.kind === "audio-classifier") lines = [];
  if (!lines.length && !(files.length && !$("files").hidden)) {
    $("error").textContent = m.kind === "audio-classifier" ? "choose audio files" : "type at least one input";
    return;
  }
  try {
    if (m.kind === "recommender") {  // one user id per line, one request each
      const rows = [];
      for (const user of lines) {
        const top = await call("POST", ROUTE[m.kind], {model: m.id, user: user.trim(), top: 5});
        rows.push([user, top.data.map((d) => d.item).join(", ")]);
      }
      const result = table(["user", "top items"], rows);
      result.id = "result";
      $("out").appendChild(result);
      return;
    }
    let input = lines;
    if (m.kind === "autoencoder" || m.kind === "multimodal") input = lines.map((l) => JSON.parse(l));
    if (m.kind === "audio-classifier" || m.kind === "image-text") {
      const key = m.kind === "audio-classifier" ? "audio" : "image";
      const encoded = await Promise.all(files.map(base64Of));
      input = [...encoded.map((b) => ({[key]: b})), ...lines];
      lines = [...files.map((f) => f.name), ...lines];
    }
    const body = {model: m.id, input};
    if (m.kind === "text-encoder" || m.kind === "image-text") body.encoding_format = "float";
    const data = await call("POST", ROUTE[m.kind], body);
    let result;
    if (m.kind === "text-encoder" || m.kind === "image-text") {
      const v = data.data.map((d) => d.embedding);
      const unit = v.map((x) => { const n = Math.hypot(...x) || 1; return x.map((y) => y / n); });
      const cos = (a, b) => a.reduce((s, x, i) => s + x * b[i], 0);
      result = table(["text", ...lines.map((_, j) => String(j))],
                     unit.map((a, i) => [i + ": " + lines[i], ...unit.map((b) => cos(a, b).toFixed(3))]));
    } else if (["classifier", "audio-classifier", "multimodal"].includes(m.kind)) {
      result = table(["text", "label", "probability"],
                     data.data.map((d, i) => [lines[i], d.label, d.score.toFixed(3)]));
    } else if (m.kind === "tagger") {
      result = table(["sentence", "tags"], data.data.map((d) => [d.words.join(" "),
        d.words.map((w, k) => w + "/" + d.tags[k]).join(" ")]));
    } else if (m.kind === "seq2seq") {
      result = table(["input", "output"], data.data.map((d, i) => [lines[i], d.output]));
    } else {
      result = table(["sample", "anomaly score"], data.data.map((d, i) => [lines[i], d.score.toFixed(4)]));
    }
    result.id = "result";
    $("out").appendChild(result);
  } catch (e) { $("error").textContent = e.message; }
}
$("settings").addEventListener("submit", (e) => { e.preventDefault(); loadModels(); });
$("model").addEventListener("change", describe);
$("run").addEventListener("click", run);
$("key").addEventListener("change", loadModels);
loadModels();
</script></body></html>
"""
