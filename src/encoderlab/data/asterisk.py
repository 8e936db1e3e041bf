"""The Asterisk telephone prompts: real recorded speech in five languages, from Debian packages (CC-BY-SA-3.0).

    data = load_asterisk_prompts(sample_rate=8000, max_seconds=4.0)     # fetched on first use
    data.label_names  # ('en', 'es', 'fr', 'it', 'ru');  data.groups: prompt ids such as 'vm-and', 'digits/7'

Debian ships the prompts of the Asterisk PBX (version 1.6.1, 8 kHz 16-bit mono WAV) as
`asterisk-core-sounds-{en,es,fr,it,ru}-wav` and their transcripts (`id: text` lines) as
`asterisk-core-sounds-{en,es,fr,it,ru}`. The first use runs `apt-get download` and `dpkg -x` into a cache
folder (nothing is installed system-wide; ~100 MB of .deb files, ~130 MB unpacked); later uses read the cache.
Where apt-get/dpkg are missing the error says how to point data= at a folder of recordings instead.

Caution: there are only four voices. English and Spanish are one speaker (Allison), French, Italian and Russian
one each, so a language classifier can succeed by recognising the voice. The honest control is English vs
Spanish (same speaker). Clips are grouped by prompt id (the same sentence in every language), so a sentence
heard in training is never in the test set. The silence/ prompts (no speech) are left out.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
from pathlib import Path

from ..errors import InputDataError
from .audio import LabelledAudio, read_audio

NAME = "asterisk-prompts"
VERSION = "1.6.1-1"
VOICES = {"en": "en_US_f_Allison", "es": "es_MX_f_Allison", "fr": "fr_CA_f_June", "it": "it_IT_m_Carlo",
          "ru": "ru_RU_f_IvrvoiceRU"}
"""Language -> the folder (and voice) of its prompts under usr/share/asterisk/sounds/."""
SPEAKERS = {"en": "Allison", "es": "Allison", "fr": "June", "it": "Carlo", "ru": "IvrvoiceRU"}
SOUNDS = Path("usr/share/asterisk/sounds")
SKIPPED_FOLDERS = ("silence",)
MIN_SECONDS = 0.1
"""Clips shorter than this (one Russian prompt has 0 samples) are left out and counted."""


def default_cache_dir() -> Path:
    """$ENCODERLAB_CACHE/debian, else $XDG_CACHE_HOME/encoderlab/debian, else ~/.cache/encoderlab/debian."""
    if os.environ.get("ENCODERLAB_CACHE"):
        return Path(os.environ["ENCODERLAB_CACHE"]).expanduser() / "debian"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "encoderlab" / "debian"


def packages(languages: tuple[str, ...]) -> list[str]:
    return [name for lang in languages for name in (f"asterisk-core-sounds-{lang}-wav", f"asterisk-core-sounds-{lang}")]


def _have_languages(root: Path, languages: tuple[str, ...]) -> bool:
    return all((root / SOUNDS / VOICES[lang]).is_dir() for lang in languages)


def fetch_asterisk(languages: tuple[str, ...] = tuple(VOICES), cache_dir: str | Path | None = None) -> Path:
    """The folder the packages are unpacked into (cache_dir/root), downloading and unpacking on first use."""
    cache = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    root = cache / "root"
    if _have_languages(root, languages):
        return root
    missing = [tool for tool in ("apt-get", "dpkg") if shutil.which(tool) is None]
    if missing:
        raise InputDataError(f"data={NAME} is fetched from Debian packages with apt-get and dpkg, but "
                             f"{' and '.join(missing)} are not available here; point data= at a folder of "
                             "recordings instead (one sub-folder per class of .wav/.flac/.ogg files), or unpack "
                             f"{', '.join(packages(languages))} (version {VERSION}) into {root}")
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    names = packages(languages)
    print(f"{NAME}: downloading {len(names)} Debian packages into {debs} (first use only)", flush=True)
    run = subprocess.run(["apt-get", "download", *names], cwd=debs, capture_output=True, text=True)
    if run.returncode != 0:
        raise InputDataError(f"data={NAME}: `apt-get download {' '.join(names)}` failed:\n{run.stderr.strip()}\n"
                             "Run `apt-get update` first (as root), or point data= at a folder of recordings")
    for deb in sorted(debs.glob("asterisk-core-sounds-*.deb")):
        run = subprocess.run(["dpkg", "-x", str(deb), str(root)], capture_output=True, text=True)
        if run.returncode != 0:
            raise InputDataError(f"data={NAME}: `dpkg -x {deb} {root}` failed: {run.stderr.strip()}; delete "
                                 f"{debs} and try again")
    if not _have_languages(root, languages):
        raise InputDataError(f"data={NAME}: the packages unpacked into {root} do not hold "
                             f"{[str(SOUNDS / VOICES[lang]) for lang in languages]}; delete {cache} and try again")
    return root


def read_transcripts(root: Path, language: str) -> dict[str, str]:
    """prompt id -> text, from usr/share/doc/asterisk-core-sounds-XX/core-sounds-XX.txt.gz ({} if absent)."""
    path = root / "usr/share/doc" / f"asterisk-core-sounds-{language}" / f"core-sounds-{language}.txt.gz"
    if not path.is_file():
        return {}
    texts = {}
    for line in gzip.decompress(path.read_bytes()).decode("utf-8", errors="replace").splitlines():
        if line.startswith(";") or ":" not in line:
            continue
        key, text = line.split(":", 1)
        texts[key.strip()] = text.strip()
    return texts


def load_asterisk_prompts(sample_rate: int = 8000, max_seconds: float | None = None,
                          languages: tuple[str, ...] = tuple(VOICES), root: str | Path | None = None,
                          cache_dir: str | Path | None = None) -> LabelledAudio:
    """Every speech prompt of `languages` (label = language, group = prompt id), fetched on first use.
    `root`: an already unpacked tree (the folder holding usr/), skipping the fetch."""
    unknown = [lang for lang in languages if lang not in VOICES]
    if unknown or len(languages) < 2:
        raise InputDataError(f"languages={list(languages)}: choose at least two of {list(VOICES)}")
    root = Path(root) if root is not None else fetch_asterisk(tuple(languages), cache_dir)
    waves, labels, groups, paths = [], [], [], []
    skipped = 0
    for label, lang in enumerate(languages):
        folder = root / SOUNDS / VOICES[lang]
        if not folder.is_dir():
            raise InputDataError(f"data={NAME}: {folder} is missing; delete the cache folder and try again")
        for path in sorted(folder.rglob("*.wav")):
            prompt = path.relative_to(folder).with_suffix("").as_posix()
            if prompt.split("/")[0] in SKIPPED_FOLDERS:
                continue
            try:
                wave = read_audio(path, sample_rate, max_seconds=max_seconds)
            except InputDataError:
                skipped += 1  # an empty prompt in the package
                continue
            if len(wave) < MIN_SECONDS * sample_rate:
                skipped += 1
                continue
            waves.append(wave)
            labels.append(label)
            groups.append(prompt)
            paths.append(str(path))
    return LabelledAudio(waves, labels, tuple(languages), groups, sample_rate, NAME, paths, skipped)
