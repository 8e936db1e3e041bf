"""Audio input: decoding, mono, resampling, bad files, labelled folders and tables, group splits, the Asterisk set."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from encoderlab.data import asterisk
from encoderlab.data.audio import (
    check_wave,
    load_labelled_audio,
    normalize_level,
    read_audio,
    resample,
    split_by_group,
)
from encoderlab.errors import InputDataError

CLIPS = Path(__file__).parent / "audio" / "asterisk"


def tone(freq: float, rate: int, seconds: float = 0.5, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_frequency(wave: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return float(np.fft.rfftfreq(len(wave), 1 / rate)[spectrum.argmax()])


def test_bundled_clips_decode_as_8khz_mono():
    wave = read_audio(CLIPS / "en" / "digits-1.flac", 8000)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert len(wave) == 7200  # the first 0.9 s at 8 kHz
    assert 0.01 < np.abs(wave).max() <= 1.0


@pytest.mark.parametrize("suffix, subtype", [(".wav", "PCM_16"), (".flac", "PCM_16"), (".ogg", "VORBIS")])
def test_formats_round_trip(tmp_path, suffix, subtype):
    wave = tone(440, 8000)
    path = tmp_path / f"a{suffix}"
    sf.write(path, wave, 8000, subtype=subtype)
    back = read_audio(path, 8000)
    assert abs(len(back) - len(wave)) <= 64  # Vorbis may pad the last block
    tolerance = 1e-3 if subtype == "PCM_16" else 0.05
    n = min(len(back), len(wave))
    assert np.sqrt(np.mean((back[:n] - wave[:n]) ** 2)) < tolerance


def test_resampling_keeps_pitch_and_level_and_removes_aliases(tmp_path):
    path = tmp_path / "hi.wav"
    wave = tone(1000, 16000, 1.0) + tone(6000, 16000, 1.0)  # 6 kHz is above the 4 kHz Nyquist of 8 kHz
    sf.write(path, wave, 16000, subtype="FLOAT")
    down = read_audio(path, 8000)
    assert len(down) == 8000
    assert dominant_frequency(down, 8000) == pytest.approx(1000, abs=2)
    middle = down[500:-500]
    assert np.sqrt(np.mean(middle ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.05)  # the 1 kHz tone alone
    # 6 kHz would fold to 2 kHz without the anti-alias filter
    spectrum = np.abs(np.fft.rfft(middle * np.hanning(len(middle))))
    freqs = np.fft.rfftfreq(len(middle), 1 / 8000)
    assert spectrum[np.abs(freqs - 2000) < 20].max() < 1e-3 * spectrum.max()
    assert resample(wave, 16000, 16000) is wave


def test_stereo_is_mixed_or_refused(tmp_path):
    left, right = tone(440, 8000), tone(660, 8000)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), 8000, subtype="FLOAT")
    np.testing.assert_allclose(read_audio(path, 8000, channels="mix"), (left + right) / 2, atol=1e-6)
    with pytest.raises(InputDataError, match="2 channels.*channels=mix"):
        read_audio(path, 8000, channels="refuse")


def test_bad_files_get_clear_errors(tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(InputDataError, match="empty.*0 bytes"):
        read_audio(empty, 8000)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage garbage")
    with pytest.raises(InputDataError, match="cannot be decoded.*corrupt"):
        read_audio(corrupt, 8000)
    text = tmp_path / "notes.flac"
    text.write_text("not audio at all")
    with pytest.raises(InputDataError, match="cannot be decoded"):
        read_audio(text, 8000)
    silent = tmp_path / "nosamples.wav"
    sf.write(silent, np.zeros(0, dtype=np.float32), 8000)
    with pytest.raises(InputDataError, match="no samples"):
        read_audio(silent, 8000)
    nan = tmp_path / "nan.wav"
    sf.write(nan, np.array([0.1, np.nan, 0.2], dtype=np.float32), 8000, subtype="FLOAT")
    with pytest.raises(InputDataError, match="NaN"):
        read_audio(nan, 8000)
    with pytest.raises(InputDataError, match="does not exist"):
        read_audio(tmp_path / "missing.wav", 8000)


def test_wrong_rate_is_an_error_when_resampling_is_off(tmp_path):
    path = tmp_path / "cd.wav"
    sf.write(path, tone(440, 44100), 44100)
    with pytest.raises(InputDataError, match="44100 Hz.*8000 Hz.*ffmpeg"):
        read_audio(path, 8000, resample_to_rate=False)
    assert len(read_audio(path, 8000)) == 4000


def test_max_seconds_crops_after_resampling(tmp_path):
    path = tmp_path / "long.wav"
    sf.write(path, tone(440, 16000, 3.0), 16000)
    assert len(read_audio(path, 8000, max_seconds=1.25)) == 10000


def test_level_normalisation_sets_the_rms_level():
    loud, quiet = tone(440, 8000, amplitude=0.9), tone(440, 8000, amplitude=0.01)
    for wave in (loud, quiet):
        level = 20 * np.log10(np.sqrt(np.mean(normalize_level(wave, -26.0).astype(np.float64) ** 2)))
        assert level == pytest.approx(-26.0, abs=1e-3)
    assert np.array_equal(normalize_level(np.zeros(5, np.float32), -26.0), np.zeros(5))


def test_in_memory_waves_are_checked():
    assert check_wave(np.array([0, 16384, -32768], dtype=np.int16), "x").tolist() == [0.0, 0.5, -1.0]
    with pytest.raises(InputDataError, match="1-D"):
        check_wave(np.zeros((100, 2)), "clip 3")
    with pytest.raises(InputDataError, match="empty"):
        check_wave(np.zeros(0), "clip 3")
    with pytest.raises(InputDataError, match="NaN"):
        check_wave(np.array([0.0, np.inf]), "clip 3")


def test_folder_of_class_subfolders():
    data = load_labelled_audio(CLIPS, 8000)
    assert data.label_names == ("en", "es", "fr", "it", "ru")
    assert len(data) == 40 and np.bincount(data.labels).tolist() == [8] * 5
    assert len(set(data.groups)) == 40  # without a table, every file is its own group


def test_folder_without_classes_is_explained(tmp_path):
    sf.write(tmp_path / "a.wav", tone(440, 8000), 8000)
    with pytest.raises(InputDataError, match="no class sub-folders"):
        load_labelled_audio(tmp_path, 8000)


def test_mp3_recordings_are_read_and_a_class_of_unreadable_files_is_named(tmp_path):
    """A folder of .mp3 clips was skipped without a word (libsndfile reads MP3), so a class of them vanished and
    the error said 'every recording has the label a'; .m4a (which it cannot read) is named with a fix."""
    for label, freq in (("hum", 200), ("beep", 1500)):
        (tmp_path / "clips" / label).mkdir(parents=True)
        for i in range(3):
            sf.write(tmp_path / "clips" / label / f"{i}.mp3", tone(freq * (1 + 0.1 * i), 16000), 16000, format="MP3")
    data = load_labelled_audio(tmp_path / "clips", 8000)
    assert data.label_names == ("beep", "hum") and len(data) == 6
    assert abs(dominant_frequency(data.waves[3], 8000) - 200) < 20  # hum/0.mp3, decoded and resampled
    (tmp_path / "clips" / "speech").mkdir()
    (tmp_path / "clips" / "speech" / "a.m4a").write_bytes(b"\x00\x00\x00\x20ftypM4A ")
    with pytest.raises(InputDataError, match=r"class folder .*speech' has no recording encoderlab reads \(it holds "
                                             r"only \.m4a files\).*ffmpeg"):
        load_labelled_audio(tmp_path / "clips", 8000)


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_tables_with_groups_split_groups_whole(tmp_path, kind):
    rows = [{"path": str((CLIPS / lang / f"digits-{d}.flac").resolve()), "label": lang, "group": f"digit{d}"}
            for lang in ("en", "fr", "it") for d in range(1, 9)]
    table = tmp_path / f"list.{kind}"
    if kind == "csv":
        table.write_text("path,label,group\n" + "".join(f"{r['path']},{r['label']},{r['group']}\n" for r in rows))
    else:
        table.write_text("".join(json.dumps(r) + "\n" for r in rows))
    data = load_labelled_audio(table, 8000)
    assert data.label_names == ("en", "fr", "it") and len(data) == 24
    train, val, test = split_by_group(data, (0.5, 0.25, 0.25), seed=0)
    sides = [set(part.groups) for part in (train, val, test)]
    assert (len(sides[0]), len(sides[1]), len(sides[2])) == (4, 2, 2)
    assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
    assert all(len(part) == 3 * len(side) for part, side in zip((train, val, test), sides, strict=True))
    again = split_by_group(data, (0.5, 0.25, 0.25), seed=0)[2]
    assert again.groups == test.groups


def test_table_with_a_missing_file_names_it(tmp_path):
    table = tmp_path / "list.csv"
    table.write_text("path,label\nnowhere.wav,en\nalso-missing.wav,es\n")
    with pytest.raises(InputDataError, match="nowhere.wav.*does not exist"):
        load_labelled_audio(table, 8000)


def fake_asterisk_tree(root: Path) -> Path:
    """The packages' layout, from the bundled clips: usr/share/asterisk/sounds/<voice>/digits/N.wav + transcripts."""
    for lang, voice in asterisk.VOICES.items():
        folder = root / asterisk.SOUNDS / voice
        for clip in sorted((CLIPS / lang).glob("*.flac")):
            wave, rate = sf.read(clip, dtype="int16")
            target = folder / "digits" / (clip.stem.split("-")[1] + ".wav")
            target.parent.mkdir(parents=True, exist_ok=True)
            sf.write(target, wave, rate, subtype="PCM_16")
        (folder / "silence").mkdir()
        sf.write(folder / "silence" / "1.wav", np.zeros(8000, dtype=np.int16), 8000, subtype="PCM_16")
        doc = root / "usr/share/doc" / f"asterisk-core-sounds-{lang}"
        doc.mkdir(parents=True)
        (doc / f"core-sounds-{lang}.txt.gz").write_bytes(gzip.compress(b"; header\n\ndigits/1: one\n"))
    return root


def test_asterisk_loader_groups_by_prompt_and_skips_silence(tmp_path):
    root = fake_asterisk_tree(tmp_path)
    data = asterisk.load_asterisk_prompts(8000, languages=("en", "es", "ru"), root=root)
    assert data.label_names == ("en", "es", "ru") and len(data) == 24
    assert sorted(set(data.groups)) == [f"digits/{d}" for d in range(1, 9)]  # silence/ is not speech
    train, _, test = split_by_group(data, (0.5, 0.25, 0.25), seed=1)
    assert not set(train.groups) & set(test.groups)
    assert all(train.groups.count(g) == 3 for g in set(train.groups))  # a prompt's three languages together
    assert asterisk.read_transcripts(root, "en") == {"digits/1": "one"}


def test_asterisk_fetch_uses_the_cache_and_explains_missing_tools(tmp_path, monkeypatch):
    fake_asterisk_tree(tmp_path / "cache" / "root")
    assert asterisk.fetch_asterisk(("en", "es"), tmp_path / "cache") == tmp_path / "cache" / "root"
    monkeypatch.setattr(asterisk.shutil, "which", lambda tool: None)
    with pytest.raises(InputDataError, match="apt-get and dpkg are not available.*point data= at a folder"):
        asterisk.fetch_asterisk(("en", "es"), tmp_path / "empty-cache")


def test_asterisk_rejects_unknown_languages(tmp_path):
    with pytest.raises(InputDataError, match="choose at least two of"):
        asterisk.load_asterisk_prompts(8000, languages=("en", "de"), root=tmp_path)


def test_the_bytes_of_a_file_decode_like_the_file():
    """What a server receives: a file's bytes, decoded the same way, and errors that name the input."""
    path = CLIPS / "fr" / "digits-3.flac"
    np.testing.assert_array_equal(read_audio(path.read_bytes(), 8000, max_seconds=0.5),
                                  read_audio(path, 8000, max_seconds=0.5))
    with pytest.raises(InputDataError, match=r"'input\[2\]' is empty"):
        read_audio(b"", 8000, name="input[2]")
    with pytest.raises(InputDataError, match=r"'input\[0\]' cannot be decoded \(Error opening it"):
        read_audio(b"RIFF....WAVE not audio at all", 8000, name="input[0]")
