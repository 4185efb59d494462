"""benchmarks.ops --only: the named rows plus ReLU, and a clear error otherwise."""

import pytest

from benchmarks import ops as bench


def test_only_keeps_the_named_candidates_and_relu():
    cands = {"relu": 0, "silu": 1, "npwlu": 2, "pwlu_channelwise": 3}
    assert list(bench.select(cands, ["pwlu_channelwise", "npwlu"])) == [
        "relu", "npwlu", "pwlu_channelwise"]
    assert bench.select(cands, None) == cands
    assert bench.parse_args(["--only", "npwlu,acon_a"]).only == "npwlu,acon_a"


def test_only_rejects_unknown_names():
    with pytest.raises(ValueError, match=r"`--only` must name candidates among .*'npwlu'.*"
                                         r"received \['npwlu_typo'\]"):
        bench.select({"relu": 0, "npwlu": 1}, ["npwlu_typo"])
