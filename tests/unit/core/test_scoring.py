import itertools

import pytest

from stream.core.scoring import f_score, fm_score, m_score, r_score, segment_for
from stream.rules import Rules

R = Rules()


@pytest.mark.parametrize(
    "days,score", [(0, 5), (30, 5), (31, 4), (90, 4), (91, 3), (180, 3), (181, 2), (365, 2), (366, 1), (5000, 1)]
)
def test_r_score_edges(days, score):
    assert r_score(days, R) == score


@pytest.mark.parametrize("freq,score", [(0, 1), (1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (6, 4), (9, 4), (10, 5), (99, 5)])
def test_f_score_edges(freq, score):
    assert f_score(freq, R) == score


@pytest.mark.parametrize(
    "cents,score",
    [(0, 1), (4999, 1), (5000, 2), (19999, 2), (20000, 3), (49999, 3), (50000, 4), (99999, 4), (100000, 5)],
)
def test_m_score_edges_on_rounded_cents(cents, score):
    assert m_score(cents, R) == score


def test_fm_is_mean_rounded_half_up():
    for f, m in itertools.product(range(1, 6), repeat=2):
        assert fm_score(f, m) == int((f + m) / 2 + 0.5)
    assert fm_score(1, 2) == 2 and fm_score(4, 5) == 5 and fm_score(2, 2) == 2 and fm_score(1, 1) == 1


SPEC_GRID = """
5 | New Customers | Potential Loyalist | Potential Loyalist | Champions | Champions
4 | Promising | Potential Loyalist | Potential Loyalist | Loyal Customers | Champions
3 | About To Sleep | Need Attention | Need Attention | Loyal Customers | Loyal Customers
2 | Hibernating | About To Sleep | At Risk | At Risk | Can't Lose Them
1 | Lost | Hibernating | At Risk | Can't Lose Them | Can't Lose Them
"""


def test_every_grid_cell_matches_the_spec():
    cells = 0
    for line in SPEC_GRID.strip().splitlines():
        r, *names = [x.strip() for x in line.split("|")]
        for fm, name in enumerate(names, start=1):
            assert segment_for(int(r), fm, R) == name, (r, fm)
            cells += 1
    assert cells == 25
