"""The prefix pool's choices (transformers and ONNX Runtime GenAI keep their states in it):
which saved state a prompt continues, when it is forked or left alone, and the cap."""

from __future__ import annotations

from slmkit.backends._prefix_pool import PrefixPool

SYSTEM = [1, 2, 3, 4]


def test_a_prompt_that_extends_a_state_takes_it_out_to_continue_in_place() -> None:
    pool: PrefixPool[str] = PrefixPool(4)
    pool.put([*SYSTEM, 5, 6], "a")
    assert pool.take([*SYSTEM, 5, 6, 7, 8]) == ("a", 6)
    assert len(pool) == 0


def test_the_last_prompt_token_is_always_left_to_evaluate() -> None:
    pool: PrefixPool[str] = PrefixPool(1)
    pool.put(SYSTEM, "a")
    assert pool.take(SYSTEM) == ("a", 3)


def test_a_prompt_that_leaves_a_state_part_way_forks_it_and_keeps_the_original() -> None:
    pool: PrefixPool[str] = PrefixPool(4, fork=lambda state, n: f"{state}[:{n}]")
    pool.put([*SYSTEM, 5, 6], "a")
    assert pool.take([*SYSTEM, 9]) == ("a[:4]", 4)
    assert pool.take([*SYSTEM, 5, 6, 7]) == ("a", 6)


def test_without_fork_a_free_slot_leaves_other_states_alone_and_a_full_pool_takes_over() -> None:
    pool: PrefixPool[str] = PrefixPool(2)
    pool.put([*SYSTEM, 5], "a")
    assert pool.take([*SYSTEM, 9]) == (None, 0)
    pool.put([*SYSTEM, 9], "b")
    assert pool.take([*SYSTEM, 7]) == ("a", 4)  # full: the least recently used of the best
    assert len(pool) == 1


def test_the_longest_shared_prefix_wins_and_nothing_shared_is_a_fresh_start() -> None:
    pool: PrefixPool[str] = PrefixPool(4)
    pool.put([*SYSTEM, 5], "a")
    pool.put([*SYSTEM, 6, 7], "b")
    assert pool.take([8, 9]) == (None, 0)
    assert pool.take([*SYSTEM, 6, 7, 1]) == ("b", 6)


def test_the_cap_evicts_the_least_recently_used_and_zero_keeps_nothing() -> None:
    pool: PrefixPool[str] = PrefixPool(2)
    pool.put([1], "a")
    pool.put([2], "b")
    pool.put([3], "c")
    assert len(pool) == 2
    assert pool.take([1, 0]) == (None, 0)
    assert pool.take([3, 0]) == ("c", 1)
    empty: PrefixPool[str] = PrefixPool(0)
    empty.put([1], "a")
    assert len(empty) == 0


def test_without_fork_the_state_a_prompt_extends_beats_a_longer_one_it_leaves() -> None:
    """Another conversation that shares more of the prompt keeps its own state."""
    pool: PrefixPool[str] = PrefixPool(4)
    pool.put([*SYSTEM, 5, 6, 7, 8], "other")
    pool.put([*SYSTEM, 5], "mine")
    assert pool.take([*SYSTEM, 5, 6, 7, 9]) == ("mine", 5)
    assert len(pool) == 1
