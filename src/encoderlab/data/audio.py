"""Read a user's recordings: decode, mix to mono, resample to one rate, crop; label them; split them by group.

    wave = read_audio("clip.flac", sample_rate=8000)                 # float32 mono in [-1, 1], (L,)
    data = load_labelled_audio("my_sounds/", sample_rate=16000)      # folder of class sub-folders
    data = load_labelled_audio("clips.csv")                          # or a .csv / .jsonl of path,label
    train, val, test = split_by_group(data, (0.8, 0.1, 0.1), seed=0) # a group never sits on two sides

Decoding is `soundfile` (libsndfile: WAV, FLAC, OGG/Vorbis, and more). Every problem names the file and how
to fix it: a missing, empty or undecodable file, NaN samples, a rate other than the model's when resampling
is off, several channels when `channels="refuse"` (the default, `"mix"`, averages them and says so nowhere
else: a stereo file is then read as the mean of its channels). Resampling is polyphase (scipy's
`resample_poly`, a Kaiser-windowed sinc low-pass), so no frequency above the new Nyquist folds back.

Labelled sets are `LabelledAudio`: the waveforms (cropped to `max_seconds` at read time, so a corpus fits in
memory), integer labels with their names, and a group per clip (e.g. the prompt id: the same sentence in
every language). `split_by_group` cuts whole groups, so a sentence heard in training is never tested.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Literal

import numpy as np

from ..errors import ConfigError, InputDataError
from .text_input import visible_files

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".aiff", ".aif")
"""What libsndfile decodes (MP3 since 1.1; soundfile 0.14's wheels bring 1.2): read from folders and lists."""
TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl")
Channels = Literal["mix", "refuse"]


def _soundfile():
    try:
        import soundfile
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise InputDataError("reading audio needs the soundfile package; install it with "
                             "`pip install 'encoderlab[audio]'` (or `pip install soundfile`)") from exc
    return soundfile


# ----------------------------------------------------------------------------------------------- one file
def resample(wave: np.ndarray, orig_rate: int, target_rate: int) -> np.ndarray:
    """(L,) float at `orig_rate` -> (ceil(L · target / orig),) at `target_rate`, band-limited polyphase."""
    if orig_rate == target_rate:
        return wave
    from scipy.signal import resample_poly

    ratio = Fraction(target_rate, orig_rate)
    return resample_poly(wave, ratio.numerator, ratio.denominator).astype(np.float32)


def read_audio(path: str | Path | bytes, sample_rate: int, *, channels: Channels = "mix",
               resample_to_rate: bool = True, max_seconds: float | None = None, name: str | None = None) -> np.ndarray:
    """Decode one file (or the bytes of one, e.g. a server request's) to float32 mono at `sample_rate`, (L,)
    with values in [-1, 1].

    channels: 'mix' averages the channels of a multi-channel file; 'refuse' makes it an error.
    resample_to_rate: False makes a file at another rate an error instead of resampling it.
    max_seconds: keep only the first max_seconds (None: the whole file).
    name: what error messages call bytes (default 'audio bytes'); a path names itself.
    """
    import io

    sf = _soundfile()
    if isinstance(path, bytes):
        source: str | io.BytesIO = io.BytesIO(path)
        size, path = len(path), name or "audio bytes"  # type: ignore[assignment]
    else:
        path = Path(path)
        if not path.is_file():
            raise InputDataError(f"audio file {str(path)!r} does not exist; check the path")
        source, size = str(path), path.stat().st_size
    if size == 0:
        raise InputDataError(f"audio file {str(path)!r} is empty (0 bytes); re-export or remove it")
    try:
        with sf.SoundFile(source) as handle:
            rate, n_channels = handle.samplerate, handle.channels
            frames = handle.frames
            if max_seconds is not None:  # read a little more than needed: resampling keeps the length ratio
                frames = min(frames, int(np.ceil(max_seconds * rate)) + 1)
            data = handle.read(frames, dtype="float32", always_2d=True)  # (L, channels)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        detail = str(exc).replace(repr(source), "it") if isinstance(source, io.BytesIO) else exc
        raise InputDataError(f"audio file {str(path)!r} cannot be decoded ({detail}); it is corrupt or not "
                             f"audio. Supported: {', '.join(AUDIO_SUFFIXES)} (anything libsndfile reads); "
                             "re-export it, e.g. `ffmpeg -i IN -ac 1 OUT.wav`") from exc
    if data.shape[0] == 0:
        raise InputDataError(f"audio file {str(path)!r} holds no samples (an empty recording); remove it")
    if not np.isfinite(data).all():
        raise InputDataError(f"audio file {str(path)!r} holds NaN or infinite samples; re-export it")
    if n_channels > 1:
        if channels == "refuse":
            raise InputDataError(f"audio file {str(path)!r} has {n_channels} channels; the model reads mono. "
                                 "Set channels=mix to average the channels, or convert it: "
                                 "`ffmpeg -i IN -ac 1 OUT.wav`")
    wave = data.mean(axis=1) if n_channels > 1 else data[:, 0]
    if rate != sample_rate:
        if not resample_to_rate:
            raise InputDataError(f"audio file {str(path)!r} is sampled at {rate} Hz, the model reads "
                                 f"{sample_rate} Hz; set resample=true, or convert it: "
                                 f"`ffmpeg -i IN -ar {sample_rate} OUT.wav`")
        wave = resample(wave, rate, sample_rate)
    if max_seconds is not None:
        wave = wave[:int(round(max_seconds * sample_rate))]
    return np.ascontiguousarray(wave, dtype=np.float32)


def normalize_level(wave: np.ndarray, dbfs: float) -> np.ndarray:
    """`wave` scaled so that its RMS level is `dbfs` dB relative to full scale (a silent clip is left as is):
    removes loudness differences between recordings, which a classifier could otherwise use."""
    rms = float(np.sqrt(np.mean(np.square(wave, dtype=np.float64))))
    if rms == 0.0:
        return wave
    return (wave * (10.0 ** (dbfs / 20.0) / rms)).astype(np.float32)


def check_wave(wave: np.ndarray, where: str) -> np.ndarray:
    """An in-memory waveform as float32 (L,); a clear error for anything else."""
    wave = np.asarray(wave)
    if wave.ndim == 2 and 1 in wave.shape:
        wave = wave.reshape(-1)
    if wave.ndim != 1:
        raise InputDataError(f"{where}: a waveform must be 1-D (samples,) mono, got shape {wave.shape}; average "
                             "the channels first (wave.mean(axis=1))")
    if wave.size == 0:
        raise InputDataError(f"{where}: the waveform is empty")
    if not np.issubdtype(wave.dtype, np.number):
        raise InputDataError(f"{where}: a waveform must be numbers, got dtype {wave.dtype}")
    if np.issubdtype(wave.dtype, np.integer):  # PCM: scale to [-1, 1) as soundfile does
        wave = wave / float(np.iinfo(wave.dtype).max + 1)
    wave = wave.astype(np.float32)
    if not np.isfinite(wave).all():
        raise InputDataError(f"{where}: the waveform holds NaN or infinite samples")
    return wave


# ----------------------------------------------------------------------------------------------- labelled sets
@dataclass
class LabelledAudio:
    """Waveforms with a class each and a group each (clips of one group are always split together)."""

    waves: list[np.ndarray]
    """float32 mono (L,) at `sample_rate`, cropped to the loader's max_seconds."""
    labels: list[int]
    label_names: tuple[str, ...]
    groups: list[str]
    """Clips with the same group (a prompt id, a speaker, a source recording) land in the same split."""
    sample_rate: int
    source: str
    paths: list[str] = field(default_factory=list)
    skipped: int = 0
    """Files the loader left out (named sets only: e.g. an empty prompt in a package)."""

    def __post_init__(self) -> None:
        if not (len(self.waves) == len(self.labels) == len(self.groups)):
            raise ValueError(f"{self.source}: {len(self.waves)} waves, {len(self.labels)} labels and "
                             f"{len(self.groups)} groups must be as many")

    def __len__(self) -> int:
        return len(self.waves)

    def subset(self, indices: Sequence[int]) -> LabelledAudio:
        pick = list(indices)
        return LabelledAudio([self.waves[i] for i in pick], [self.labels[i] for i in pick], self.label_names,
                             [self.groups[i] for i in pick], self.sample_rate, self.source,
                             [self.paths[i] for i in pick] if self.paths else [])

    def seconds(self) -> float:
        return float(sum(len(w) for w in self.waves)) / self.sample_rate


def split_by_group(data: LabelledAudio, fractions: tuple[float, float, float], seed: int
                   ) -> tuple[LabelledAudio, LabelledAudio, LabelledAudio]:
    """Seeded train/validation/test split of whole groups: the group ids are shuffled and cut at the
    fractions, so no group has clips on two sides."""
    names = sorted(set(data.groups))
    if len(names) < 3:
        raise InputDataError(f"{data.source}: {len(names)} distinct groups cannot be split three ways; "
                             "give more recordings (or more groups)")
    order = [names[i] for i in np.random.default_rng(seed).permutation(len(names))]
    n_train = round(len(order) * fractions[0])
    n_val = round(len(order) * (fractions[0] + fractions[1])) - n_train
    side = {g: 0 for g in order[:n_train]} | {g: 1 for g in order[n_train:n_train + n_val]} \
        | {g: 2 for g in order[n_train + n_val:]}
    parts: tuple[list[int], list[int], list[int]] = ([], [], [])
    for i, group in enumerate(data.groups):
        parts[side[group]].append(i)
    return data.subset(parts[0]), data.subset(parts[1]), data.subset(parts[2])


def _read_labelled(paths: list[Path], labels: list[str], groups: list[str], source: str, sample_rate: int,
                   max_seconds: float | None, channels: Channels) -> LabelledAudio:
    if not paths:
        raise InputDataError(f"{source}: no recordings found ({', '.join(AUDIO_SUFFIXES)})")
    names = tuple(sorted(set(labels)))
    if len(names) < 2:
        raise InputDataError(f"{source}: every recording has the label {names[0]!r}; a classifier needs at least "
                             "two classes")
    index = {n: i for i, n in enumerate(names)}
    waves = [read_audio(p, sample_rate, channels=channels, max_seconds=max_seconds) for p in paths]
    return LabelledAudio(waves, [index[label] for label in labels], names, groups, sample_rate, source,
                         [str(p) for p in paths])


def load_audio_folder(root: str | Path, sample_rate: int, max_seconds: float | None = None,
                      channels: Channels = "mix") -> LabelledAudio:
    """A folder with one sub-folder per class holding audio files (AUDIO_SUFFIXES; searched recursively).
    Each file is its own group (name a group per clip with a .csv/.jsonl `group` column instead). A class
    folder without a readable recording is an error that says what it holds (.m4a files, say), instead of a
    class that silently disappears."""
    root = Path(root)
    classes = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))  # not .git/ etc.
    if not classes:
        raise InputDataError(f"{str(root)!r} has no class sub-folders; put each class's recordings in a folder "
                             "named after the class (my_sounds/dog/1.wav, my_sounds/cat/2.flac, ...)")
    paths, labels = [], []
    for folder in classes:
        files = visible_files(folder, AUDIO_SUFFIXES)
        if not files:
            other = sorted({p.suffix.lower() or p.name for p in folder.rglob("*") if p.is_file()
                            and not p.name.startswith(".")})
            held = f"it holds only {', '.join(other)} files" if other else "it is empty"
            raise InputDataError(f"class folder {str(folder)!r} has no recording encoderlab reads ({held}); "
                                 f"readable: {', '.join(AUDIO_SUFFIXES)}. Convert them, e.g. `ffmpeg -i IN.m4a "
                                 "OUT.wav`, or remove the folder")
        paths += files
        labels += [folder.name] * len(files)
    return _read_labelled(paths, labels, [str(p.relative_to(root)) for p in paths], str(root), sample_rate,
                          max_seconds, channels)


def load_audio_table(path: str | Path, sample_rate: int, max_seconds: float | None = None,
                     channels: Channels = "mix") -> LabelledAudio:
    """A .csv/.tsv (header `path,label[,group]`) or .jsonl (`{"path": ..., "label": ..., "group": ...}`);
    relative paths are relative to the table's folder. Without a group column each file is its own group."""
    from .text_input import jsonl_lines, read_csv_rows

    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"audio list {str(path)!r} does not exist; check the path")
    rows: list[dict[str, str]] = []
    if path.suffix.lower() == ".jsonl":
        for line_no, record, line in jsonl_lines(path):
            if not isinstance(record, dict) or not record.get("path") or record.get("label") in (None, ""):
                raise InputDataError(f"{path}:{line_no}: each line needs a 'path' and a 'label', got {line[:80]!r}")
            rows.append({k: str(v) for k, v in record.items()})
    else:
        files, labels, problems = read_csv_rows(path, "path", "label", options=("a 'path' column", "a 'label' column"))
        if problems:
            raise InputDataError(f"{path}: {len(problems)} rows cannot be used, e.g. {problems[0]}")
        groups = _csv_column(path, "group")
        rows = [{"path": f, "label": lab, **({"group": groups[i]} if groups else {})}
                for i, (f, lab) in enumerate(zip(files, labels or [], strict=True))]
    paths = [(path.parent / r["path"]) if not Path(r["path"]).is_absolute() else Path(r["path"]) for r in rows]
    return _read_labelled(paths, [r["label"].strip() for r in rows], [r.get("group") or r["path"] for r in rows],
                          str(path), sample_rate, max_seconds, channels)


def _csv_column(path: Path, name: str) -> list[str] | None:
    import csv

    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
        if name not in (reader.fieldnames or []):
            return None
        return [row[name] for row in reader if any(row.values())]


def load_labelled_audio(source: str | Path, sample_rate: int, max_seconds: float | None = None,
                        channels: Channels = "mix") -> LabelledAudio:
    """A folder of class sub-folders, or a .csv/.tsv/.jsonl list of path,label."""
    path = Path(source).expanduser()
    if path.is_dir():
        return load_audio_folder(path, sample_rate, max_seconds, channels)
    if path.suffix.lower() in TABLE_SUFFIXES:
        return load_audio_table(path, sample_rate, max_seconds, channels)
    if not path.exists():
        raise InputDataError(f"data={str(source)!r} does not exist; pass a folder of class sub-folders of "
                             f"{'/'.join(AUDIO_SUFFIXES)} files, a .csv/.jsonl of path,label, or a named set "
                             "(asterisk-prompts)")
    raise InputDataError(f"data={str(source)!r} is neither a folder nor a {'/'.join(TABLE_SUFFIXES)} list of "
                         "path,label")


def check_channels(value: str) -> Channels:
    if value not in ("mix", "refuse"):
        raise ConfigError(f"channels={value!r} must be 'mix' (average a multi-channel file's channels) or 'refuse'")
    return value  # type: ignore[return-value]
