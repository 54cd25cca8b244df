"""Named scenarios: scripts of activities, varied by a seeded random generator.

A scenario's ``build(rng)`` returns the activities (``sim.gait_model``) to be
rendered back to back. The generator varies the person's gait (cadence, step
length, variability) and the script's timing; the walker varies the body
and the sensor with the same seed. Every scenario but ``fidget`` and
``daily-living`` and ``seated-start`` (which start seated, as real recordings
do) opens with at least 4 s of still standing, when the coach captures the
wearer's upright.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from walkcoach.sim.belt import BeltMove, BeltMovingWalk
from walkcoach.sim.gait_model import Activity, Bend, HandleBelt, Lean, Shuffle, Sit, Stand, Turn, Walk
from walkcoach.sim.stairs import StairFlight

DEFAULT_SCENARIO = "full-session"


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str  # one line, shown by `walkcoach sim --list`
    build: Callable[[np.random.Generator], list[Activity]]
    button: tuple[tuple[float, float], ...] = ()  # (start_s, held_s): the wearer presses the belt's button


def healthy_gait(rng: np.random.Generator) -> dict:
    """A healthy adult's gait: 100-118 steps/min, 0.62-0.78 m steps, step-time CV 2-4 %."""
    return dict(cadence_spm=rng.uniform(100, 118), step_length_m=rng.uniform(0.62, 0.78),
                step_cv=rng.uniform(0.02, 0.04), asymmetry=rng.uniform(0.0, 0.04))


def quick_bend(rng: np.random.Generator, depth_deg: tuple[float, float] = (40, 80)) -> Bend:
    return Bend(rng.uniform(*depth_deg), down_s=rng.uniform(0.6, 1.0), hold_s=rng.uniform(0.3, 1.0),
                up_s=rng.uniform(0.8, 1.3))


def some_turn(rng: np.random.Generator, earliest_s: float, latest_s: float) -> Turn:
    return Turn(rng.uniform(earliest_s, latest_s), rng.choice([-1, 1]) * rng.uniform(90, 180))


def upright_walk(rng):
    gait = healthy_gait(rng)
    return [Stand(5.0),
            Walk(375.0, **gait, turns=(some_turn(rng, 120, 250),)),
            Stand(rng.uniform(6, 10), weight_shifts=1),
            Walk(345.0, **gait, turns=(some_turn(rng, 100, 250),)),
            Stand(5.0)]


def leaning_walk(rng):
    """Three leans of different holds (~8, 20, 45 s) and angles (20-35 deg) in random order."""
    holds_s = rng.permutation([8.0, 20.0, 45.0]) * rng.uniform(0.9, 1.1, 3)
    leans, start_s = [], rng.uniform(30, 50)
    for hold_s in holds_s:
        lean = Lean(start_s, rng.uniform(20, 35), hold_s, rng.uniform(1.0, 2.5))
        leans.append(lean)
        start_s += 2 * lean.ramp_s + hold_s + rng.uniform(40, 70)
    return [Stand(5.0), Walk(start_s + 20.0, **healthy_gait(rng), leans=tuple(leans)), Stand(5.0)]


def bend_and_go(rng):
    gait = healthy_gait(rng)
    return [Stand(5.0), Walk(rng.uniform(50, 70), **gait), Stand(2.0), quick_bend(rng), Stand(3.0),
            Walk(rng.uniform(40, 60), **gait), Stand(3.0), quick_bend(rng), Stand(2.5), quick_bend(rng),
            Stand(2.0), Walk(rng.uniform(50, 70), **gait), Stand(2.0), quick_bend(rng), Stand(5.0)]


def lbp_walk(rng):
    """Low back pain: slower, shorter, more variable steps and a constant ~10 deg lean (clearly below 15)."""
    walk = Walk(590.0, cadence_spm=rng.uniform(86, 94), step_length_m=rng.uniform(0.45, 0.55),
                step_cv=rng.uniform(0.05, 0.07), asymmetry=rng.uniform(0.04, 0.08),
                posture_deg=rng.uniform(8, 11), turns=(some_turn(rng, 200, 400),))
    return [Stand(5.0), walk, Stand(5.0)]


def slow_walk(rng):
    walk = Walk(350.0, cadence_spm=rng.uniform(50, 60), step_length_m=rng.uniform(0.28, 0.38),
                step_cv=rng.uniform(0.07, 0.09), asymmetry=rng.uniform(0.05, 0.1),
                turns=(Turn(rng.uniform(150, 200), rng.choice([-180.0, 180.0])),))
    return [Stand(5.0), walk, Stand(5.0)]


def standing(rng):
    return [Stand(300.0, weight_shifts=int(rng.integers(6, 12)))]


def sitting(rng):
    sit = Sit(600.0, tilt_deg=rng.uniform(-16, -8), flexion_deg=rng.uniform(30, 45),
              transition_s=rng.uniform(1.3, 2.0))
    return [Stand(6.0), sit, Stand(10.0)]


def fidget(rng):
    """Belt handling, then ~4.5 min of shifting, turning on the spot, bending and reaching.

    At least 3 s of standing separates the at-most-4-step shuffles, so no run
    of rhythmic steps ever forms.
    """
    activities, elapsed_s = [HandleBelt(rng.uniform(25, 40)), Stand(10.0, weight_shifts=2)], 50.0
    while elapsed_s < 300.0:
        kind = rng.choice(["shift", "shuffle", "bend", "reach"])
        if kind == "shift":
            activities.append(Stand(rng.uniform(6, 15), weight_shifts=int(rng.integers(1, 4))))
        elif kind == "shuffle":
            turn_deg = rng.choice([-1, 1]) * rng.uniform(45, 180)
            activities.append(Shuffle(int(rng.integers(2, 5)), turn_deg))
        else:
            activities.append(quick_bend(rng, (40, 80) if kind == "bend" else (18, 35)))
        pause_s = rng.uniform(3, 8)
        activities.append(Stand(pause_s))
        elapsed_s += pause_s + 5.0
    return activities


def full_session(rng):
    """An outing that walks past a 10-min cap: ~13.5 min in three bouts, two leans, a bend."""
    gait = healthy_gait(rng)
    tired = dict(gait, cadence_spm=0.95 * gait["cadence_spm"])
    first_lean = Lean(rng.uniform(60, 120), angle_deg=rng.uniform(20, 30), hold_s=rng.uniform(10, 25),
                      ramp_s=rng.uniform(1.0, 2.0))
    second_lean = Lean(rng.uniform(80, 150), angle_deg=rng.uniform(18, 28), hold_s=rng.uniform(8, 15),
                       ramp_s=rng.uniform(1.0, 2.0))
    return [Stand(5.0),
            Walk(rng.uniform(300, 330), **gait, leans=(first_lean,), turns=(some_turn(rng, 200, 260),)),
            Stand(rng.uniform(40, 60), weight_shifts=2), quick_bend(rng), Stand(rng.uniform(5, 10)),
            Walk(rng.uniform(270, 300), **gait, leans=(second_lean,), turns=(some_turn(rng, 180, 240),)),
            Stand(rng.uniform(30, 50), weight_shifts=1),
            Walk(rng.uniform(200, 230), **tired),
            Stand(20.0)]


def long_walk(rng):
    """Half an hour of steady walking with turns: the soak for sensor faults and drift."""
    gait = healthy_gait(rng)
    return [Stand(5.0),
            Walk(1800.0, **gait, turns=tuple(some_turn(rng, start_s, start_s + 200) for start_s in range(200, 1600, 400))),
            Stand(5.0)]


def pain_walk(rng):
    """A 9-min walk on a 10-min cap; the wearer reports pain at 3 min and again at 4.5 min."""
    return [Stand(5.0), Walk(540.0, **healthy_gait(rng), turns=(some_turn(rng, 200, 300),)), Stand(10.0)]


def recalibrate(rng):
    """A walk, a pause in which the wearer holds the button to capture the upright again, a walk."""
    gait = healthy_gait(rng)
    return [Stand(5.0), Walk(90.0, **gait), Stand(12.0), Walk(120.0, **gait), Stand(5.0)]


# -- upright, stairs and the belt (issue 10): starts seated, flights of stairs, a belt that moves ---------
def _held_lean(rng, earliest_s: float, latest_s: float) -> Lean:
    return Lean(rng.uniform(earliest_s, latest_s), rng.uniform(20, 30), rng.uniform(10, 20), rng.uniform(1.0, 2.0))


def seated_start(rng):
    """Starts seated (the pelvis tilted back), stands up and walks off after 1-3 s; one held lean."""
    gait = healthy_gait(rng)
    return [Sit(rng.uniform(30, 60), tilt_deg=rng.uniform(-16, -8), flexion_deg=rng.uniform(30, 45),
                transition_s=rng.uniform(1.3, 2.0), start_seated=True),
            Stand(rng.uniform(1.0, 3.0)),
            Walk(240.0, **gait, leans=(_held_lean(rng, 80, 150),), turns=(some_turn(rng, 40, 70),)),
            Stand(3.0), Sit(rng.uniform(40, 80), tilt_deg=rng.uniform(-16, -8)), Stand(rng.uniform(1.0, 3.0)),
            Walk(90.0, **gait), Stand(5.0)]


def _flight(rng, gait, up: bool) -> StairFlight:
    """16-20 risers of 15-19 cm at 80-95 steps/min; leaning 12-20 deg into an ascent, 0-5 deg down."""
    cadence_spm = rng.uniform(80, 95) if up else rng.uniform(90, 105)
    steps = int(rng.integers(16, 21))
    riser_m = rng.uniform(0.15, 0.19) * (1 if up else -1)
    return StairFlight((steps + 1) * 60.0 / cadence_spm, cadence_spm=cadence_spm, step_length_m=rng.uniform(0.26, 0.32),
                       step_cv=gait["step_cv"], asymmetry=gait["asymmetry"],
                       posture_deg=rng.uniform(12, 20) if up else rng.uniform(0, 5), riser_m=riser_m)


def stairs(rng):
    """Level walking and three flights of stairs (up, down, up), a short stop at each landing."""
    gait = healthy_gait(rng)
    return [Stand(5.0), Walk(rng.uniform(50, 70), **gait), Stand(rng.uniform(1.0, 2.0)), _flight(rng, gait, True),
            Stand(rng.uniform(1.0, 2.0)), Walk(rng.uniform(25, 35), **gait), Stand(rng.uniform(1.0, 2.0)),
            _flight(rng, gait, False), Stand(rng.uniform(1.0, 2.0)), Walk(rng.uniform(30, 40), **gait),
            Stand(rng.uniform(1.0, 2.0)), _flight(rng, gait, True), Stand(rng.uniform(1.0, 2.0)),
            Walk(rng.uniform(25, 35), **gait), Stand(5.0)]


def _belt_axis(rng, around: tuple[float, float], spread_deg: float) -> tuple[float, float, float]:
    """A horizontal body axis within ``spread_deg`` of ``around`` (forward, left components)."""
    a = np.arctan2(around[1], around[0]) + np.radians(rng.uniform(-spread_deg, spread_deg))
    return (float(np.cos(a)), float(np.sin(a)), 0.0)


def belt_rotation(rng):
    """The belt turns 25 deg over 3-5 minutes of walking (rolling forward, a little sideways); a held lean after."""
    turn_s = rng.uniform(180, 300)
    start_s = rng.uniform(40, 60)
    move = BeltMove(start_s, turn_s, 25.0, _belt_axis(rng, (0.0, 1.0), 30.0))
    lean = _held_lean(rng, start_s + turn_s + 40, start_s + turn_s + 60)
    walk = BeltMovingWalk(start_s + turn_s + 120, **healthy_gait(rng), leans=(lean,), belt_moves=(move,))
    return [Stand(5.0), walk, Stand(5.0)]


def belt_slip(rng):
    """The belt slips down one side while walking (15-25 deg in half a second); a held lean later."""
    slip_s = rng.uniform(60, 100)
    move = BeltMove(slip_s, 0.5, rng.uniform(15, 25) * rng.choice([-1, 1]), _belt_axis(rng, (1.0, 0.0), 25.0))
    walk = BeltMovingWalk(slip_s + 160, **healthy_gait(rng), leans=(_held_lean(rng, slip_s + 50, slip_s + 90),),
                          belt_moves=(move,))
    return [Stand(5.0), walk, Stand(5.0)]


ISSUE_10_SCENARIOS = (
    Scenario("seated-start", "starts seated, stands up and walks off; sits again and walks; one held lean", seated_start),
    Scenario("stairs", "level walking and three 16-20 step flights of stairs (up, down, up), leaning into the climbs",
             stairs),
    Scenario("belt-rotation", "the belt turns 25 deg over 3-5 min of walking; a held lean after", belt_rotation),
    Scenario("belt-slip", "the belt slips 15-25 deg down one side while walking; a held lean after", belt_slip),
)


# --- Messy walkers (issue 9): daily living, asymmetric, shuffling and very slow gait. ---------------
# Measured against real recordings by tools/real_gait_stats.py (README: "The simulator against real
# recordings"). Kept in one block so other scenario additions merge cleanly.


def short_walk(rng, gait: dict, steps: int) -> Walk:
    """A daily-living walk of exactly ``steps`` heel strikes (then its closing contact), speeding up and slowing
    down, a turn if long enough."""
    duration_s = steps * 60.0 / gait["cadence_spm"]
    turns = (Turn(rng.uniform(0.2, 0.35) * duration_s, rng.choice([-1, 1]) * rng.uniform(90, 180)),) if steps >= 13 else ()
    return Walk(duration_s, **gait, steps=steps, turns=turns)


def handling_things(rng) -> list[Activity]:
    """Standing at a table or a cupboard: reaches, a pick-up now and then, weight shifts, turning on the spot."""
    activities: list[Activity] = [Stand(rng.uniform(2.0, 4.0), weight_shifts=int(rng.integers(0, 2)))]
    for _ in range(int(rng.integers(1, 3))):
        activities.append(quick_bend(rng, (15, 35) if rng.random() < 0.6 else (40, 70)))
        activities.append(Stand(rng.uniform(1.5, 3.0), weight_shifts=int(rng.integers(0, 2))))
    activities.append(Shuffle(int(rng.integers(2, 4)), rng.choice([-1, 1]) * rng.uniform(60, 180)))
    activities.append(Stand(rng.uniform(1.5, 3.0)))
    return activities


def sit_a_while(rng, seconds: tuple[float, float], start_seated: bool = False) -> Sit:
    return Sit(rng.uniform(*seconds), tilt_deg=rng.uniform(-16, -8), flexion_deg=rng.uniform(30, 45),
               transition_s=rng.uniform(1.3, 2.0), start_seated=start_seated)


def daily_living(rng):
    """~2.5 min starting seated: 6-20-step walks between sitting, standing, turning and handling things.

    Walks have at least 6 steps (4 strides; with the closing contact 5, the last removed by the
    definition), the Mobilise-D bout's minimum, so the truth's walk segments and the reference
    definition agree; everything between them lasts more than 3 s (the
    reference's longest break inside one bout). Short walks are mostly starting, stopping and
    turning steps, which brake and push off harder than steady steps at the same mean speed: their
    heel strikes are scaled up to the real daily-living bouts' peaks (tools/real_gait_stats.py).
    """
    gait = dict(cadence_spm=rng.uniform(85, 108), step_length_m=rng.uniform(0.45, 0.7),
                step_cv=rng.uniform(0.03, 0.05), asymmetry=rng.uniform(0.0, 0.06),
                tempo_swing=rng.uniform(0.22, 0.32), impact_sigma=rng.uniform(0.45, 0.6),
                impact_scale=rng.uniform(1.8, 2.4))
    steps = rng.permutation([int(rng.integers(6, 10)), int(rng.integers(6, 12)), int(rng.integers(10, 16)),
                             int(rng.integers(14, 21)), int(rng.integers(8, 18))])
    activities = [sit_a_while(rng, (6, 12), start_seated=True), Stand(rng.uniform(0.5, 1.5)),
                  short_walk(rng, gait, int(steps[0]))]
    between: list[Callable[[], list[Activity]]] = [lambda: handling_things(rng),
               lambda: [Stand(rng.uniform(1.0, 2.0)), sit_a_while(rng, (8, 25)), Stand(rng.uniform(0.5, 1.5))],
               lambda: [Stand(rng.uniform(3.5, 8.0), weight_shifts=int(rng.integers(1, 3)))]]
    for k, count in enumerate(steps[1:]):
        activities += between[(k + int(rng.integers(0, 3))) % 3]()
        activities.append(short_walk(rng, gait, int(count)))
    return [*activities, Stand(rng.uniform(3.0, 5.0))]


def asymmetric_walk(rng):
    """Antalgic / hemiparetic-like gait: alternate steps unalike in time and heel strike, two walks."""
    gait = dict(cadence_spm=rng.uniform(80, 100), step_length_m=rng.uniform(0.4, 0.6),
                step_cv=rng.uniform(0.03, 0.05), asymmetry=rng.uniform(0.12, 0.2),
                weak_side_impact=rng.uniform(0.35, 0.55), weak_side_rise=rng.uniform(0.4, 0.6))
    return [Stand(5.0), Walk(rng.uniform(80, 100), **gait, turns=(some_turn(rng, 30, 50),)),
            Stand(rng.uniform(6, 10), weight_shifts=1), Walk(rng.uniform(50, 70), **gait), Stand(5.0)]


def shuffle_walk(rng):
    """Shuffling with a walking aid: ~70 steps/min, 0.15 m steps, soft contacts, long double support."""
    walk = Walk(150.0, cadence_spm=rng.uniform(66, 74), step_length_m=rng.uniform(0.13, 0.17),
                step_cv=rng.uniform(0.06, 0.08), asymmetry=rng.uniform(0.03, 0.08),
                posture_deg=rng.uniform(5, 10), impact_scale=rng.uniform(0.4, 0.6), impact_sigma=0.35,
                second_peak=rng.uniform(0.6, 0.9), second_peak_at=rng.uniform(0.35, 0.45),
                turns=(Turn(rng.uniform(60, 90), rng.choice([-180.0, 180.0])),))
    return [Stand(5.0), walk, Stand(5.0)]


def very_slow_walk(rng):
    """40 steps/min with 0.25 m steps: the pelvis rises only ~6 mm a step."""
    walk = Walk(145.0, cadence_spm=rng.uniform(38, 42), step_length_m=rng.uniform(0.23, 0.27),
                step_cv=rng.uniform(0.06, 0.09), asymmetry=rng.uniform(0.04, 0.08),
                second_peak=rng.uniform(0.3, 0.5), second_peak_at=rng.uniform(0.3, 0.4),
                turns=(Turn(rng.uniform(60, 90), rng.choice([-180.0, 180.0])),))
    return [Stand(5.0), walk, Stand(5.0)]


MESSY_SCENARIOS = (
    Scenario("daily-living", "~2.5 min from a chair: 6-20-step walks with turns, sitting, standing, handling things",
             daily_living),
    Scenario("asymmetric-walk", "2.5 min of asymmetric gait: alternate steps unalike (stride rhythm > step rhythm)",
             asymmetric_walk),
    Scenario("shuffle-walk", "2.5 min shuffling with a walking aid: ~70 steps/min, 0.15 m steps, two peaks a step",
             shuffle_walk),
    Scenario("very-slow-walk", "2.5 min at 40 steps/min with 0.25 m steps (the pelvis rises ~6 mm)",
             very_slow_walk),
)
# --- end of the messy walkers ---------------------------------------------------------------------


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("upright-walk", "12 min of brisk upright walking: two bouts with a turn each and a short pause",
                 upright_walk),
        Scenario("leaning-walk", "walking with three sustained forward leans (20-35 deg, ~8/20/45 s holds)",
                 leaning_walk),
        Scenario("bend-and-go", "short walks and standing with quick bends to pick things up; no sustained lean",
                 bend_and_go),
        Scenario("lbp-walk", "10 min low-back-pain walk: ~90 steps/min, short steps, ~10 deg constant lean",
                 lbp_walk),
        Scenario("slow-walk", "6 min slow uneven walk: 50-60 steps/min, short steps, step-time CV ~8 %",
                 slow_walk),
        Scenario("standing", "5 min standing with postural sway and weight shifts", standing),
        Scenario("sitting", "stand, sit down, 10 min seated with small movements, stand up", sitting),
        Scenario("fidget", "belt handling, weight shifts, turning on the spot, bends and reaches; no walking",
                 fidget),
        Scenario("long-walk", "30 min of steady walking with turns (the soak for sensor faults)", long_walk),
        Scenario("full-session", "a ~16 min outing: ~13.5 min walking in three bouts, two leans, a bend",
                 full_session),
        Scenario("pain-walk", "9 min of walking; the button pressed for pain at 3:00 (cap shortened) and 4:30 (stop)",
                 pain_walk, button=((185.0, 0.2), (275.0, 0.2))),
        Scenario("recalibrate", "walking, then the button held 3.5 s in a pause (calibrate), then walking again",
                 recalibrate, button=((96.5, 3.5),)),
        *MESSY_SCENARIOS,
        *ISSUE_10_SCENARIOS,
    )
}


# --- Lying (issue 9: no bout while sitting, standing or lying) --------------------------------------
# Kept in one block at the end so other scenario additions merge cleanly.
from walkcoach.sim.gait_model import (  # noqa: E402
    Context,
    Motion,
    add_pulses,
    flexion_profile,
    min_jerk,
    moves,
    quiet_stance,
    second_derivative,
)

SUPINE_DEG = -90.0  # the truth lean while lying, on the back or a side: the trunk horizontal, not leaning forward


@dataclass(frozen=True)
class Lie:
    """Sit down on a bed or sofa, lie down supine, roll onto a side, lie still, turn over onto the
    other side, fidget, roll back, sit up and stand up; from and back to standing.

    The orientation is Z-Y-X Euler (``sim.walker``): lying supine is the trunk pitched 90 deg back
    (gravity along the body's forward axis); on a side it is rolled 90 deg about the forward axis
    (gravity along the body's left axis). Supine, a roll about the forward axis is a yaw about the
    vertical, so the roll is put on (and taken off) there with the opposite yaw: no motion at all.
    A roll onto a side is then the pitch going from -90 to 0 (right side down) or -180 (left side
    down), the trunk turning about its long axis. The truth lean is ``SUPINE_DEG`` throughout
    (pitch beyond it is sway: not posture); a lying wearer is not coached.
    """

    supine_s: float = 20.0
    side_s: float = 60.0
    other_side_s: float = 40.0
    fidgets: int = 4
    tilt_deg: float = -12.0  # seated on the edge, before lying down and after sitting up
    flexion_deg: float = 38.0
    transition_s: float = 1.6
    roll_s: float = 1.8

    def render(self, ctx: Context) -> Motion:
        rng, tr_s, roll_s = ctx.rng, self.transition_s, self.roll_s
        seated_s, lie_down_s, sit_up_s, settle_s = rng.uniform(3.0, 6.0), rng.uniform(2.0, 3.0), rng.uniform(2.0, 3.5), 1.0
        # phase starts, relative to the activity: sit down, seated, lie down, supine (roll put on), roll onto a
        # side, still, turn over (through supine), on the other side with fidgets, roll back, supine (roll off),
        # sit up, seated, stand up
        t_lie = tr_s + seated_s
        t_supine = t_lie + lie_down_s
        t_side = t_supine + settle_s + self.supine_s
        t_turn = t_side + roll_s + self.side_s
        t_other = t_turn + 2.0 * roll_s
        t_back = t_other + self.other_side_s
        t_unroll = t_back + roll_s + settle_s
        t_sit_up = t_unroll + settle_s + 1.0
        t_rise = t_sit_up + sit_up_s + rng.uniform(2.0, 4.0)
        n = ctx.samples(t_rise + tr_s)
        t_s = ctx.rel_times(n)
        motion = quiet_stance(ctx, n, 0.5)
        side = rng.choice([-1.0, 1.0])  # the first side: pitch 0 (right side down) or -180 (left side down)
        # rendered pitch: seated tilt, supine, a side, the other side (through supine), supine, seated
        pitch = moves(t_s, [t_lie, t_side, t_turn, t_back, t_sit_up],
                      [lie_down_s, roll_s, 2.0 * roll_s, roll_s, sit_up_s],
                      np.array([SUPINE_DEG, SUPINE_DEG + 90.0 * side, SUPINE_DEG - 90.0 * side, SUPINE_DEG, self.tilt_deg])
                      - self.tilt_deg)
        roll_on = moves(t_s, [t_supine + 0.2, t_unroll], [settle_s - 0.4, settle_s - 0.4], [90.0, 0.0])
        seated = (t_s >= tr_s) & (t_s < t_rise)
        sitting_down = flexion_profile(t_s / tr_s, 0.0, self.flexion_deg, self.tilt_deg, 0.4)
        standing_up = flexion_profile((t_s - t_rise) / tr_s, self.tilt_deg, self.flexion_deg, 0.0, 0.45)
        rendered_deg = np.select([t_s < tr_s, seated], [sitting_down, self.tilt_deg + pitch], standing_up)
        lying = (t_s >= t_lie + 0.5 * lie_down_s) & (t_s < t_sit_up + 0.5 * sit_up_s)
        motion.lean_deg = np.where(lying, SUPINE_DEG, rendered_deg)
        motion.sway_deg[:, 1] += rendered_deg - motion.lean_deg
        motion.sway_deg[:, 0] += roll_on
        motion.sway_deg[:, 2] -= roll_on
        # Fidgets on the other side: a leg drawn up, a shrug, the mattress bouncing (irregular knocks).
        fidget_starts_s = t_other + 2.0 + np.sort(rng.uniform(0.0, max(self.other_side_s - 6.0, 1.0), self.fidgets))
        fidget_s = rng.uniform(0.6, 1.5, self.fidgets)
        shifts = rng.uniform(-0.05, 0.05, (self.fidgets, 3))
        shifts[-1] = 0.0
        motion.sway_deg += moves(t_s, fidget_starts_s, fidget_s, rng.uniform(-8.0, 8.0, (self.fidgets, 3)) * [1, 1, 0.5]
                                 * (np.arange(self.fidgets) < self.fidgets - 1)[:, None])
        knocks_s = fidget_starts_s + rng.uniform(0.1, 0.5, self.fidgets)
        add_pulses(motion.acc_ms2[:, 2], t_s, knocks_s, rng.uniform(0.5, 2.0, self.fidgets), np.full(self.fidgets, 0.03))
        # the pelvis: down onto the seat, back and up a little lying down, sideways rolling over, the reverse
        lowered = min_jerk(t_s / tr_s) - min_jerk((t_s - t_rise) / tr_s)
        lay = min_jerk((t_s - t_lie) / lie_down_s) - min_jerk((t_s - t_sit_up) / sit_up_s)
        across = moves(t_s, [t_side, t_turn, t_back], [roll_s, 2.0 * roll_s, roll_s], [0.15 * side, -0.15 * side, 0.0])
        position_m = np.column_stack([-0.12 * lowered - 0.25 * lay, across + moves(t_s, fidget_starts_s, fidget_s, shifts[:, 1]),
                                      -0.45 * lowered + 0.05 * lay + moves(t_s, fidget_starts_s, fidget_s, shifts[:, 2])])
        motion.acc_ms2 += second_derivative(position_m, ctx.rate_hz)
        motion.bends = [(ctx.t0_s, ctx.t0_s + tr_s), (ctx.t0_s + t_rise, ctx.t0_s + t_rise + tr_s)]
        return motion


def lying(rng) -> list:
    """From standing: sit on a bed, lie down, a side, the other side with fidgets, sit up, stand, a short walk."""
    gait = healthy_gait(rng)
    lie = Lie(supine_s=rng.uniform(15, 30), side_s=rng.uniform(60, 120), other_side_s=rng.uniform(40, 80),
              fidgets=int(rng.integers(3, 7)), tilt_deg=rng.uniform(-16, -8), flexion_deg=rng.uniform(30, 45),
              transition_s=rng.uniform(1.3, 2.0), roll_s=rng.uniform(1.5, 2.5))
    return [Stand(6.0), lie, Stand(rng.uniform(4.0, 6.0)), Walk(rng.uniform(40, 60), **gait), Stand(5.0)]


SCENARIOS["lying"] = Scenario(
    "lying", "sit on a bed, lie down, roll onto a side, turn over, fidget, sit up, stand up and walk a short walk",
    lying)
# --- end of lying ------------------------------------------------------------------------------------
