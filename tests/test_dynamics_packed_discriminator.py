"""The packed discriminator's plateau at chance (PacGAN on the grid, docs/dynamics.md §6)."""
import math

import numpy as np
import pytest

from jgan.dynamics.packed_discriminator import packed_discriminator_trace


def test_unpacked_discriminator_learns_the_grid_while_packs_of_four_stay_at_chance():
    # Same data, same network, same budget: m = 1 leaves chance within a few thousand
    # steps; m = 4 has strictly more evidence per input but has not yet found the
    # lattice, its loss still at log 4.
    single = packed_discriminator_trace(1, seed=0, num_steps=4000)
    packed = packed_discriminator_trace(4, seed=0, num_steps=4000)
    assert single.accuracy[-1] > 0.7
    assert single.steps_to(0.65) is not None and single.steps_to(0.65) <= 4000
    assert packed.accuracy.max() < 0.6
    assert packed.steps_to(0.65) is None
    np.testing.assert_allclose(packed.loss[-1], math.log(4.0), atol=0.02)
    np.testing.assert_array_equal(single.steps, [1000, 2000, 3000, 4000])


def test_trace_rejects_a_batch_that_does_not_split_into_packs():
    with pytest.raises(ValueError, match="pack=3"):
        packed_discriminator_trace(3, batch_size=256, num_steps=10, chunk=10)
    with pytest.raises(ValueError, match="multiple of chunk"):
        packed_discriminator_trace(1, num_steps=15, chunk=10)


def test_plateau_script_prints_a_row_per_pack_and_seed(capsys):
    from experiments.dynamics.pacgan_plateau import main
    main(["--packs=1,2", "--seeds=0", "--num_steps=2000"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 1 ")
            or line.startswith("| 2 ")]
    assert len(rows) == 2
