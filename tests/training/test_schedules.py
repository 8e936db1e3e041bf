import math

import matplotlib
import pytest

from encoderlab.training.config import TrainConfig
from encoderlab.training.schedules import SCHEDULES, make_schedule

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

TOTAL, WARMUP = 100, 10


def schedule(name: str, **kw):
    cfg = TrainConfig(schedule=name, warmup_steps=kw.pop("warmup", WARMUP), min_lr_ratio=kw.pop("min_ratio", 0.1),
                      step_size=30, gamma=0.5, **kw)
    return make_schedule(cfg, TOTAL)


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_warmup_is_linear_and_reaches_peak(name):
    f = schedule(name, warmup=10)
    assert f(0) == pytest.approx(0.1)
    assert f(4) == pytest.approx(0.5)
    assert f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0)


def test_values_at_key_steps():
    const, lin, cos, tri, step = (schedule(n) for n in ("constant", "linear", "cosine", "triangle", "step"))
    assert [const(s) for s in (50, 99, 500)] == [1.0, 1.0, 1.0]
    assert lin(55) == pytest.approx(1 - 0.9 * 45 / 90)  # halfway through the decay
    assert lin(100) == pytest.approx(0.1) and lin(1000) == pytest.approx(0.1)
    assert cos(55) == pytest.approx(0.1 + 0.9 * 0.5)  # cos(pi/2) = 0: halfway between peak and floor
    assert cos(100) == pytest.approx(0.1)
    assert cos(32) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 22 / 90)))
    assert [step(s) for s in (39, 40, 69, 70, 100)] == pytest.approx([1.0, 0.5, 0.5, 0.25, 0.125])
    assert tri(9) == pytest.approx(1.0) and tri(100) == pytest.approx(0.1)


def test_triangle_peaks_mid_run_without_warmup():
    tri = schedule("triangle", warmup=0, min_ratio=0.0)
    peak = max(range(TOTAL), key=tri)
    assert peak == TOTAL // 2 - 1 and tri(peak) == pytest.approx(1.0)
    assert tri(0) == pytest.approx(1 / 50) and tri(75) == pytest.approx(0.5)


def test_decays_are_monotone_after_warmup():
    for name in ("linear", "cosine", "triangle", "step"):
        f = schedule(name)
        values = [f(s) for s in range(WARMUP, TOTAL + 1)]
        assert all(a >= b for a, b in zip(values, values[1:], strict=False)), name
        assert min(values) >= 0.1 - 1e-12, name


def test_plot_all_schedules(tmp_path):
    fig, ax = plt.subplots(figsize=(7, 4))
    steps = range(TOTAL + 1)
    for name in sorted(SCHEDULES):
        ax.plot(steps, [schedule(name)(s) for s in steps], label=name)
    ax.set(xlabel="step", ylabel="lr / peak lr", title=f"warmup={WARMUP}, min_lr_ratio=0.1")
    ax.legend()
    path = tmp_path / "schedules.png"
    fig.savefig(path, dpi=80)
    plt.close(fig)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


def test_inverse_sqrt_is_vaswanis_schedule():
    f = schedule("inverse_sqrt", warmup=10, min_ratio=0.0)
    # lr ∝ min(step / warmup, sqrt(warmup / step)) (Vaswani et al. 2017, 5.3), 1 at the end of warmup
    assert f(9) == pytest.approx(1.0) and f(10) == pytest.approx(1.0)
    assert f(40) == pytest.approx(0.5) and f(90) == pytest.approx(1 / 3)
    # it ignores the run's length: past `total` it keeps decaying instead of sitting at a floor
    assert f(1000) == pytest.approx(0.1) and f(4000) == pytest.approx(0.05)
    assert schedule("inverse_sqrt", warmup=10, min_ratio=0.2)(4000) == pytest.approx(0.2)
    values = [f(s) for s in range(10, 500)]
    assert all(a > b for a, b in zip(values, values[1:], strict=False))


def test_inverse_sqrt_is_selectable_from_a_config_and_unknown_names_are_refused():
    from encoderlab.config import from_dict
    from encoderlab.errors import ConfigError

    cfg = from_dict(TrainConfig, {"schedule": "inverse_sqrt", "warmup_steps": 4})
    assert make_schedule(cfg, 100)(15) == pytest.approx(math.sqrt(4 / 15))
    with pytest.raises(ConfigError, match="schedule"):
        from_dict(TrainConfig, {"schedule": "inverse_square_root"})
