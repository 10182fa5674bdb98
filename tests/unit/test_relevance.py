"""The calibration's evidence rule for the dense weight, and the relevance model (issue 16): pure functions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from shortlist.errors import ConfigError, InputError
from shortlist.keywords.calibration import (
    CALIBRATION_VERSION,
    CJK_PRIOR_WEIGHT,
    PRIOR_WEIGHT,
    RELEVANCE_PRIOR,
    RELEVANCE_RULE,
    Calibration,
    coverage,
    fit_relevance,
    relevance_features,
    relevance_prior,
    shrunk_weight,
)
from shortlist.search.options import SearchOptions
from shortlist.types import Hit


def test_probes_that_neither_side_finds_barely_move_the_weight() -> None:
    # the case: 57 probes, MRR@10 0.040 dense and 0.082 keyword; the MRR ratio alone said 0.33
    dense, keyword = [0.04] * 57, [0.082] * 57
    assert shrunk_weight(dense, keyword, PRIOR_WEIGHT) >= 0.7


def test_probes_found_well_take_the_weight_near_the_mrr_ratio() -> None:
    dense, keyword = [0.74] * 100, [0.68] * 100  # XQuAD en: the ratio says 0.52
    assert 0.52 <= shrunk_weight(dense, keyword, PRIOR_WEIGHT) <= 0.53
    # SciFact: MRR 0.37 and 0.28 on 100 probes (37 and 28 found): the ratio's 0.57, within 0.01 (at 0.65, where a
    # prior counted as 20 found probes put it, hybrid nDCG@10 fell from 0.732 to 0.721)
    assert shrunk_weight([0.368] * 100, [0.277] * 100, PRIOR_WEIGHT) in (0.57, 0.58)
    assert shrunk_weight([], [], PRIOR_WEIGHT) == PRIOR_WEIGHT
    assert shrunk_weight([0.0] * 50, [0.0] * 50, 0.25) == 0.25  # probes that find nothing keep the prior


def test_coverage_counts_cjk_bigrams_and_words() -> None:
    assert coverage("如何重置密码", "打开设置页面，点击重置密码。") == pytest.approx(3 / 5)
    assert coverage("reset the password", "Click Reset password.") == pytest.approx(2 / 3)
    assert coverage("？！", "anything") == 0.0
    assert coverage("怎么买咖啡？", "To reset your password, open Settings.") == 0.0


def test_fit_relevance_sets_the_level_and_stays_near_the_prior_on_little_data() -> None:
    rng = np.random.default_rng(1)
    n = 300
    y = np.r_[np.ones(n), np.zeros(2 * n)]  # two wrong chunks per probe
    bm = np.where(y == 1, rng.normal(12, 3, 3 * n), rng.normal(4, 2, 3 * n)).clip(0)
    x = np.stack([relevance_features(0.5, b, 0.0) for b in bm])
    prior = RELEVANCE_PRIOR["cjk"]
    coef = fit_relevance(x, y, prior)
    assert coef[1:] == tuple(prior[1:])  # the prior's direction and scale are kept
    p = 1 / (1 + np.exp(-(x @ np.asarray(coef))))
    assert p[y == 1].mean() > 0.5 > p[y == 0].mean()
    few = fit_relevance(x[[0, n, n + 1]], y[[0, n, n + 1]], prior)
    assert abs(few[0] - prior[0]) < 1.0
    assert fit_relevance(x[:5], y[:5], prior) == tuple(prior)  # no wrong chunk: nothing to fit


def test_relevance_is_in_unit_interval_and_follows_the_evidence() -> None:
    cal = Calibration()
    near = cal.relevance_for("How do I reset my password?", 0.8, 9.0, "To reset your password, open Settings.")
    far = cal.relevance_for("How do I reset my password?", 0.05, 0.0, "Orders ship within three days.")
    assert 0.0 <= far < 0.1 < 0.9 < near <= 1.0
    zh = cal.relevance_for("如何重置密码？", 0.1, 8.0, "如何重置密码？打开设置页面，点击重置密码。")
    assert zh > cal.relevance_for("如何重置密码？", 0.5, 0.0, "发票在每月第一天发送到账单地址。")


def test_calibration_round_trips_its_relevance_model(tmp_path: Path) -> None:
    cal = Calibration(
        "fp", {"latin": 0.6}, {"latin": 80}, {"latin": {"dense": 0.5}}, 1.0, relevance={"latin": (1, 2, 3, 4)}
    )
    cal.save(tmp_path)
    back = Calibration.load(tmp_path)
    assert back is not None and back.version == CALIBRATION_VERSION
    assert back.relevance_model("a question") == (1.0, 2.0, 3.0, 4.0)
    assert back.relevance_model("一个问题") == relevance_prior("cjk", CJK_PRIOR_WEIGHT) == (-4.0, 0.0, 1.0, 3.0)


def test_relevance_weighs_the_sides_as_the_fusion_does() -> None:
    # equal trust: the sides add up; the Latin prior weight 0.9: the cosine leads, the keyword evidence counts a fifth
    assert relevance_prior("latin", 0.5) == RELEVANCE_PRIOR["latin"] == (-6.0, 10.0, 0.5, 2.0)
    assert relevance_prior("latin", PRIOR_WEIGHT) == (-8.4, 18.0, 0.1, 0.4)
    assert relevance_prior("cjk", 0.9)[1] == 0.0  # a CJK query's cosine never counts
    # a collection whose calibration trusts the keyword side more gives its BM25 and coverage more say
    cal = Calibration(weights={"latin": 0.3})
    assert cal.relevance_model("a question") == relevance_prior("latin", 0.3)
    q, text = "How do I reset my password?", "To reset your password, open Settings."
    lexical = cal.relevance_for(q, 0.3, 9.0, text) - cal.relevance_for(q, 0.3, 0.0, "Orders ship in three days.")
    prior = Calibration()
    assert lexical > prior.relevance_for(q, 0.3, 9.0, text) - prior.relevance_for(q, 0.3, 0.0, "Orders ship.")


def test_relevance_saved_under_another_rule_falls_back_to_the_prior(tmp_path: Path) -> None:
    cal = Calibration("fp", {"latin": 0.6}, {"latin": 80}, {}, 1.0, relevance={"latin": (1, 2, 3, 4)})
    cal.save(tmp_path)
    raw = json.loads((tmp_path / "calibration.json").read_text())
    assert raw["relevance_rule"] == RELEVANCE_RULE
    raw["relevance_rule"] = RELEVANCE_RULE - 1
    (tmp_path / "calibration.json").write_text(json.dumps(raw))
    back = Calibration.load(tmp_path)
    assert back is not None and back.weights == {"latin": 0.6}  # the fusion keeps its weights
    assert back.relevance_model("a question") == relevance_prior("latin", 0.6)


def test_min_relevance_and_hit_relevance_are_checked() -> None:
    assert SearchOptions(min_relevance=0.5).min_relevance == 0.5
    for bad in (-0.1, 1.5, "0.5", True):
        with pytest.raises(ConfigError, match="min_relevance"):
            SearchOptions(min_relevance=bad)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="relevance"):
        Hit("c1", "text", 0.5, relevance=1.2)
    assert Hit("c1", "text", 0.5, relevance=0.25).to_dict()["relevance"] == 0.25
