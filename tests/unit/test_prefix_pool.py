"""The prefix pool's choices (transformers and ONNX Runtime GenAI keep their states in it):
which saved state a prompt continues, when it is forked or left alone, and the cap; and the
ledger behind OpenVINO's estimate of what its own block cache reused."""

from __future__ import annotations

from slmkit.backends._prefix_pool import PrefixLedger, PrefixPool

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


def test_the_ledger_counts_whole_blocks_of_the_longest_shared_prefix() -> None:
    ledger = PrefixLedger(4, block=4)
    assert ledger.cached([1, 2, 3]) == 0
    ledger.add([*SYSTEM, 5, 6, 7, 8, 9])
    assert ledger.cached([*SYSTEM, 5, 6, 7, 0]) == 4  # 7 shared: one whole block
    assert ledger.cached([*SYSTEM, 5, 6, 7, 8, 9, 10]) == 8
    assert ledger.cached([*SYSTEM, 5, 6, 7, 8]) == 4  # the last prompt token is evaluated


def test_a_conversation_keeps_one_ledger_entry_and_the_cap_drops_the_oldest() -> None:
    ledger = PrefixLedger(2, block=1)
    ledger.add([*SYSTEM, 5])
    ledger.add([*SYSTEM, 5, 6, 7])  # the next turn replaces the one it extends
    ledger.add([9, 9])
    assert len(ledger) == 2
    ledger.add([8, 8])
    assert len(ledger) == 2
    assert ledger.cached([*SYSTEM, 5, 6, 7, 0]) == 0
    assert ledger.cached([9, 9, 0]) == 2
