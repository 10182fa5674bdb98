"""Fusion functions and the calibration's pieces that need no model: convex fusion, scripts, probes, weights."""

from __future__ import annotations

from shortlist.fusion import (
    CJK_PRIOR_WEIGHT,
    PRIOR_WEIGHT,
    AdaptiveFusion,
    Calibration,
    convex,
    dense_weight,
    make_probes,
    script_of,
)

DENSE = [("a", 0.9), ("b", 0.6), ("c", 0.5)]
KEYWORD = [("c", 12.0), ("d", 6.0)]


def test_convex_scales_each_list_and_weights_them() -> None:
    fused = dict(convex("q", DENSE, KEYWORD, weight=0.5))
    assert fused["a"] == 0.5  # dense best -> 1, not in the keyword list
    assert fused["c"] == 0.5  # dense last -> 0, keyword best -> 1
    assert fused["d"] == 0.25
    assert [i for i, _ in convex("q", DENSE, KEYWORD, weight=1.0)] == ["a", "b", "c"]
    assert [i for i, _ in convex("q", DENSE, KEYWORD, weight=0.0)] == ["c", "d"]


def test_convex_with_one_side_empty_keeps_the_other_order() -> None:
    assert [i for i, _ in convex("q", DENSE, [], weight=0.3)] == ["a", "b", "c"]
    assert [i for i, _ in convex("q", [], KEYWORD, weight=0.9)] == ["c", "d"]
    assert convex("q", [], [], weight=0.5) == []


def test_script_of() -> None:
    assert script_of("How many points did the Panthers surrender?") == "latin"
    assert script_of("黑豹队的防守丢了多少分？") == "cjk"
    assert script_of("NFL 黑豹队的防守丢了多少分") == "cjk"
    assert script_of("1234 !!") == "latin"


def test_weights_by_script_with_priors() -> None:
    cal = Calibration(weights={"cjk": 0.2})
    assert cal.weight_for("黑豹队的防守") == 0.2
    assert cal.weight_for("the defence") == PRIOR_WEIGHT
    assert Calibration().weight_for("黑豹队") == CJK_PRIOR_WEIGHT
    assert AdaptiveFusion(cal).weight("黑豹队") == 0.2
    assert dense_weight(0.8, 0.2) == 0.8 and dense_weight(0.0, 0.0) == PRIOR_WEIGHT


def test_probes_hold_out_one_sentence_and_are_deterministic() -> None:
    chunks = [
        ("c1", "d1", "Cats sleep sixteen hours a day. They hunt at dawn and dusk. Their whiskers sense air."),
        ("c2", "d2", "A single sentence without a second one"),
        ("c3", "d3", "黑豹队的防守只丢了308分，在联赛中排名第六。同时也以24次拦截领先国家橄榄球联盟。"),
    ]
    probes = make_probes(chunks, n=10, seed=0)
    assert {p.chunk_id for p in probes} == {"c1", "c3"}  # c2 has one sentence: no probe
    for p in probes:
        text = dict((c[0], c[2]) for c in chunks)[p.chunk_id]
        assert p.query in text and p.query not in p.rest
    assert {p.script for p in probes} == {"latin", "cjk"}
    assert make_probes(chunks, n=10, seed=0) == probes


def test_calibration_round_trip(tmp_path) -> None:
    cal = Calibration("fp", {"latin": 0.55}, {"latin": 100}, {"latin": {"dense": 0.8, "keyword": 0.6}}, 1.5)
    cal.save(tmp_path)
    assert Calibration.load(tmp_path) == cal
    assert Calibration.load(tmp_path / "missing") is None
