import numpy as np
import pytest

from encoderlab.files import atomic_save_npy, atomic_write, atomic_write_text


def test_failed_write_leaves_the_old_file_untouched(tmp_path):
    target = tmp_path / "out.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_write(target, "w") as handle:
        handle.write("half of the new")
        raise RuntimeError("crash in the middle")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]  # no temp file left behind


def test_atomic_npy_round_trip(tmp_path):
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    atomic_save_npy(tmp_path / "a.npy", array)
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), array)


def test_written_files_get_the_usual_permissions_not_mkstemps_private_ones(tmp_path):
    import os
    import stat

    previous = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "report.html", "<html></html>")
        atomic_save_npy(tmp_path / "vectors.npy", np.zeros(3))
    finally:
        os.umask(previous)
    for name in ("report.html", "vectors.npy"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name


def test_file_in_the_way_finds_the_file_a_directory_cannot_be_made_under(tmp_path):
    from encoderlab.files import file_in_the_way

    (tmp_path / "notes.txt").write_text("x")
    assert file_in_the_way(tmp_path / "notes.txt") == tmp_path / "notes.txt"
    assert file_in_the_way(tmp_path / "notes.txt" / "a" / "b") == tmp_path / "notes.txt"
    assert file_in_the_way(tmp_path / "new" / "run") is None and file_in_the_way(tmp_path) is None
