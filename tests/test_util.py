"""Tests for pescador.util."""

import warnings

import numpy as np
import pytest

import pescador
from pescador.util import (Deprecated, batch_length, deprecated, derive_rng,
                           get_rng, moved, rename_kw)


def test_get_rng_none_is_global_state():
    assert get_rng(None) is np.random.mtrand._rand
    np.random.seed(3)
    expected = np.random.RandomState(3).randint(10**6)
    assert get_rng(None).randint(10**6) == expected


@pytest.mark.parametrize("seed", [0, 7, np.int32(7), 2**32 - 1])
def test_get_rng_int_seeds_a_random_state(seed):
    rng = get_rng(seed)
    assert isinstance(rng, np.random.RandomState)
    assert rng.randint(10**6) == np.random.RandomState(int(seed)).randint(10**6)


def test_get_rng_passes_generators_through():
    state = np.random.RandomState(1)
    assert get_rng(state) is state
    generator = np.random.default_rng(1)
    assert get_rng(generator) is generator


@pytest.mark.parametrize("bad", [1.5, "0", True, -1, 2**32, [1], object()])
def test_get_rng_rejects_other_values(bad):
    with pytest.raises(pescador.PescadorError, match="random_state=") as info:
        get_rng(bad)
    assert repr(bad)[:20] in str(info.value)


@pytest.mark.parametrize("make", [np.random.RandomState,
                                  np.random.default_rng])
def test_derive_rng_is_reproducible_and_advances(make):
    parent = make(5)
    first, second = derive_rng(parent), derive_rng(parent)
    assert type(first) is type(parent)
    draws_first = first.random(8)
    draws_second = second.random(8)
    assert not np.allclose(draws_first, draws_second)

    replay = make(5)
    np.testing.assert_array_equal(derive_rng(replay).random(8), draws_first)
    np.testing.assert_array_equal(derive_rng(replay).random(8), draws_second)


def test_batch_length():
    assert batch_length({"X": np.zeros((5, 2)), "Y": np.zeros(5)}) == 5
    assert batch_length({"X": [1, 2, 3]}) == 3


@pytest.mark.parametrize("bad, message", [
    ({"X": np.zeros(5), "Y": np.zeros(4)}, "differ in length"),
    ({"X": np.float32(1)}, "has no length"),
    ({"X": np.zeros(())}, "has no length"),
    ({}, "non-empty dict"),
    ([np.zeros(3)], "non-empty dict"),
])
def test_batch_length_errors(bad, message):
    with pytest.raises(pescador.PescadorError, match=message):
        batch_length(bad)


def test_rename_kw():
    assert rename_kw("old", Deprecated(), "new", 2, "1.0", "2.0") == 2
    with pytest.warns(DeprecationWarning) as caught:
        assert rename_kw("old", 1, "new", 2, "1.0", "2.0") == 1
    # pescador 2.0's wording: the keyword was renamed, not deprecated.
    assert [str(w.message) for w in caught] == [
        "Keyword argument 'old' has been renamed to 'new' in version 1.0. "
        "This alias will be removed in version 2.0."]


def test_deprecated_decorator():
    @deprecated("1.0", "2.0")
    def triple(x):
        """Triple x."""
        return 3 * x

    assert triple.__name__ == "triple"
    assert triple.__doc__ == "Triple x."
    with pytest.warns(DeprecationWarning, match="deprecated as of version 1.0"):
        assert triple(2) == 6


def test_moved_decorator():
    @moved("pescador.old_name", "1.0", "2.0")
    def new_name():
        return "value"

    with pytest.warns(DeprecationWarning, match="pescador.old_name moved"):
        assert new_name() == "value"


def test_warnings_point_at_the_caller():
    @deprecated("1.0", "2.0")
    def old():
        return None

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old()
    assert caught[0].filename == __file__
