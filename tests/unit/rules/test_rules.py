from __future__ import annotations

import subprocess
import sys
import tomllib
from decimal import Decimal
from pathlib import Path

import pytest

from stream.rules import (
    DEFAULT_RULES_PATH,
    SEGMENT_NAMES,
    Rules,
    RulesError,
    calibrate,
    load_rules,
    parse_rules,
    render_rules_toml,
)


def test_default_file_has_exactly_the_spec_values():
    r = load_rules(None)
    assert r == Rules()
    assert r.rules_schema == 1
    assert r.timezone == "UTC" and r.window_days == 730
    assert r.reporting_currency == "USD" and r.currency_rates == {} and r.max_event_bytes == 262144
    assert r.scores.recency.thresholds == (30, 90, 180, 365)
    assert r.scores.frequency.thresholds == (10, 6, 4, 2)
    assert r.scores.monetary.thresholds == (1000, 500, 200, 50)
    g = r.segments
    assert g.r5 == ("New Customers", "Potential Loyalist", "Potential Loyalist", "Champions", "Champions")
    assert g.r4 == ("Promising", "Potential Loyalist", "Potential Loyalist", "Loyal Customers", "Champions")
    assert g.r3 == ("About To Sleep", "Need Attention", "Need Attention", "Loyal Customers", "Loyal Customers")
    assert g.r2 == ("Hibernating", "About To Sleep", "At Risk", "At Risk", "Can't Lose Them")
    assert g.r1 == ("Lost", "Hibernating", "At Risk", "Can't Lose Them", "Can't Lose Them")
    assert len(set(SEGMENT_NAMES)) == 11 and set(g.names) == set(SEGMENT_NAMES)
    t = r.tags
    assert t.one_time_buyer.min_recency_days == 60
    assert (t.repeat_purchaser.min_orders, t.repeat_purchaser.max_recency_days) == (2, 365)
    assert t.lapsed.min_recency_days == 180
    assert t.high_spender.min_m == 5
    assert (t.low_spender.min_f, t.low_spender.max_m) == (3, 2)
    assert (t.coupon_lover.min_frequency, t.coupon_lover.min_discounted_percent) == (3, 60)
    o = t.overdue
    assert (o.min_days, o.gap_multiplier, o.max_recency_days, o.min_orders) == (14, 2, 365, 3)
    assert (t.cart_abandoner.after_ms, t.cart_abandoner.until_ms) == (4 * 3600_000, 7 * 86400_000)
    assert t.prospect.window_days == 30
    e = t.engaged_non_buyer
    assert (e.min_opens, e.opens_window_days, e.no_order_days) == (2, 30, 60)


def test_shipped_file_is_the_rendered_defaults_with_comments():
    text = DEFAULT_RULES_PATH.read_text()
    assert text == render_rules_toml(Rules())
    assert text.count("#") > 40


def test_version_is_stable_across_processes_and_formatting():
    v = Rules().version
    assert v.startswith("r1-") and len(v) == 15
    out = subprocess.run(
        [sys.executable, "-c", "from stream.rules import load_rules; print(load_rules(None).version)"],
        capture_output=True, text=True, check=True, cwd=Path(__file__).parents[3],
    ).stdout.strip()
    assert out == v
    # comments / formatting / explicit defaults do not change it
    assert parse_rules("# hello\n\n  window_days   =  730  # two years\n").version == v
    assert parse_rules("[tags.overdue]\ngap_multiplier = 2.0\n").version == v
    # any value does
    assert parse_rules("window_days = 731\n").version != v
    assert parse_rules('timezone = "Europe/Berlin"\n').version != v
    assert parse_rules("[currency_rates]\nEUR = 1.08\n").version != v


def _err(text: str) -> str:
    with pytest.raises(RulesError) as exc:
        parse_rules(text, "rules.toml")
    return str(exc.value)


def test_non_monotonic_thresholds_name_file_field_and_reason():
    assert _err("[scores.recency]\nthresholds = [30, 90, 80, 365]\n") == (
        "rules.toml: scores.recency: thresholds must increase (30, 90, 80, 365)"
    )
    assert "scores.frequency: thresholds must decrease" in _err("[scores.frequency]\nthresholds = [10, 6, 6, 2]\n")
    assert "scores.monetary: thresholds must decrease" in _err("[scores.monetary]\nthresholds = [1000, 50, 200, 5]\n")


def test_field_path_with_index():
    msg = _err('[scores.recency]\nthresholds = [30, 90, "x", 365]\n')
    assert msg.startswith("rules.toml: scores.recency.thresholds[2]: ")
    assert "integer" in msg
    assert _err("[scores.recency]\nthresholds = [30, 90, 365]\n") == (
        "rules.toml: scores.recency.thresholds: too few values (needs exactly 4)"
    )


def test_unknown_keys_are_errors():
    msg = _err("[scores.recency]\ntresholds = [30, 90, 180, 365]\n")
    assert msg.startswith("rules.toml: scores.recency.tresholds: unknown key")
    assert "thresholds" in msg
    assert _err("windowdays = 3\n").startswith("rules.toml: windowdays: unknown key")
    assert "tags.lapsedd: unknown key" in _err("[tags.lapsedd]\nmin_recency_days = 1\n")


def test_grid_must_be_5x5_of_known_names():
    assert "segments.r3[1]: unknown segment 'Need Atention'" in _err(
        '[segments]\nr3 = ["About To Sleep", "Need Atention", "Need Attention", "Loyal Customers", "Loyal Customers"]\n'
    )
    assert "segments.r2" in _err('[segments]\nr2 = ["Lost", "Lost"]\n')
    # renaming works when the new name is declared
    names = ", ".join(f'"{n}"' for n in SEGMENT_NAMES + ("VIP",))
    r = parse_rules(f'[segments]\nnames = [{names}]\nr5 = ["New Customers", "Potential Loyalist", '
                    f'"Potential Loyalist", "VIP", "VIP"]\n')
    assert r.segments.r5[4] == "VIP"


def test_timezone_currency_and_rates_are_validated():
    assert "timezone: unknown IANA time zone 'Mars/Base'" in _err('timezone = "Mars/Base"\n')
    assert "reporting_currency" in _err('reporting_currency = "usd"\n')
    assert "currency_rates" in _err("[currency_rates]\neur = 1.1\n")
    assert "rate must be > 0" in _err("[currency_rates]\nEUR = 0\n")
    assert "currency_rates.USD" in _err("[currency_rates]\nUSD = 2\n")
    assert "window_days" in _err("window_days = 0\n")
    assert "window_days" in _err('window_days = "730"\n')
    assert "rules_schema" in _err("rules_schema = 2\n")
    assert "tags.cart_abandoner" in _err("[tags.cart_abandoner]\nafter_hours = 200\nuntil_days = 7\n")
    assert "tags.coupon_lover.min_discounted_percent" in _err("[tags.coupon_lover]\nmin_discounted_percent = 120\n")
    assert "cents" in _err("[scores.monetary]\nthresholds = [1000, 500, 200, 49.999]\n")


def test_toml_syntax_error_names_file_and_line():
    msg = _err("window_days = 730\n[scores\nthresholds = 1\n")
    assert msg.startswith("rules.toml: line 2: invalid TOML")


def test_load_rules_names_the_given_path(tmp_path):
    p = tmp_path / "my-rules.toml"
    p.write_text("[scores.recency]\nthresholds = [30, 90, 80, 365]\n")
    with pytest.raises(RulesError, match=r"my-rules\.toml: scores\.recency: thresholds must increase"):
        load_rules(p)
    with pytest.raises(RulesError, match="cannot read"):
        load_rules(tmp_path / "missing.toml")


def test_partial_file_takes_defaults():
    r = parse_rules('timezone = "Europe/Berlin"\n')
    assert r.timezone == "Europe/Berlin" and r.window_days == 730 and r.scores == Rules().scores


def test_render_load_round_trip():
    custom = Rules.model_validate(
        {
            "timezone": "America/New_York",
            "window_days": 365,
            "currency_rates": {"EUR": 1.0835, "GBP": "1.271234567890123456", "USD": 1},
            "scores": {"monetary": {"thresholds": [999.99, 500.5, 200, 0]}},
            "tags": {"overdue": {"gap_multiplier": 1.5}, "cart_abandoner": {"after_hours": 0.5, "until_days": 3}},
            "segments": {"names": list(SEGMENT_NAMES) + ['Quote "me"']},
        }
    )
    for rules in (Rules(), custom):
        text = render_rules_toml(rules)
        tomllib.loads(text)
        back = parse_rules(text)
        assert back == rules and back.version == rules.version


def test_calibrate_quintiles_and_monotonic():
    data = [(i, i % 7 + 1, i * 3.3) for i in range(100)]
    r = calibrate(data)
    rec = r.scores.recency.thresholds
    assert rec == (19, 39, 59, 79)
    assert all(b > a for a, b in zip(rec, rec[1:]))
    f = r.scores.frequency.thresholds
    m = r.scores.monetary.thresholds
    assert all(b < a for a, b in zip(f, f[1:])) and all(b < a for a, b in zip(m, m[1:]))
    assert r.tags == Rules().tags and r.segments == Rules().segments
    # everything equal: ties pushed up by one step, never merged
    r = calibrate([(5, 1, 10.0)] * 50)
    assert r.scores.recency.thresholds == (5, 6, 7, 8)
    assert r.scores.frequency.thresholds == (4, 3, 2, 1)
    assert r.scores.monetary.thresholds == (Decimal("10.03"), Decimal("10.02"), Decimal("10.01"), Decimal("10.00"))
    # result is a valid rules file
    assert parse_rules(render_rules_toml(r)) == r
    # no data: the base is kept; customers without orders are skipped
    assert calibrate([]) == Rules()
    assert calibrate([(None, None, None)]) == Rules()
