"""tri_mm: products with triangular operands that skip zero blocks equal the dense product."""

from __future__ import annotations

import itertools

import pytest
import torch

from optbench.optim import _triangular
from optbench.optim._triangular import tri_mm
from optbench.optim.kron import Kron, factors

KINDS = ("U", "L", "F")


def _operand(kind: str, rows: int, cols: int, gen) -> torch.Tensor:
    """Small integers in float64 (every product and sum exact), with the other triangle zero."""
    x = torch.randint(-4, 5, (rows, cols), generator=gen).double()
    return x.triu() if kind == "U" else x.tril() if kind == "L" else x


@pytest.mark.parametrize("ka,kb", [(a, b) for a, b in itertools.product(KINDS, KINDS) if (a, b) != ("F", "F")])
@pytest.mark.parametrize("n", [1, 2, 7, 37, 64])
def test_every_kind_pair_equals_the_dense_product_exactly(ka, kb, n):
    gen = torch.Generator().manual_seed(n)
    m, p = 11, 13  # the full operands' free dims
    A = _operand(ka, n, n, gen) if ka != "F" else _operand("F", m, n, gen)
    B = _operand(kb, n, n, gen) if kb != "F" else _operand("F", n, p, gen)
    for min_block in (1, 4, 9, 10**6):
        assert torch.equal(tri_mm(A, B, ka, kb, min_block=min_block), A @ B), min_block


def test_transposed_views_are_read_as_they_are():
    gen = torch.Generator().manual_seed(1)
    Q = _operand("U", 40, 40, gen)
    X = _operand("F", 40, 9, gen)
    assert torch.equal(tri_mm(Q.T, X, "L", "F", min_block=3), Q.T @ X)
    assert torch.equal(tri_mm(X.T, Q.T, "F", "L", min_block=3), X.T @ Q.T)


def test_structural_zeros_are_exact_zeros_in_float32():
    torch.manual_seed(0)
    U, T = torch.randn(300, 300).triu(), torch.randn(300, 300).triu()
    C = tri_mm(U, T, "U", "U", min_block=32)
    assert torch.equal(C.tril(-1), torch.zeros(300, 300))
    torch.testing.assert_close(C, U @ T, rtol=1e-5, atol=1e-4)
    L = tri_mm(U.T, T.T, "L", "L", min_block=32)
    assert torch.equal(L.triu(1), torch.zeros(300, 300))


def test_at_most_min_block_is_one_dense_product_bit_for_bit():
    torch.manual_seed(1)
    U, G = torch.randn(_triangular.MIN_BLOCK, _triangular.MIN_BLOCK).triu(), torch.randn(_triangular.MIN_BLOCK, 50)
    assert torch.equal(tri_mm(U, G, "U", "F"), torch.mm(U, G))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_stays_one_dense_product_by_default(dtype):
    """Blocks would accumulate in bf16 / fp16 (a dense product accumulates in fp32), so those are not blocked."""
    torch.manual_seed(2)
    n = 3 * _triangular.MIN_BLOCK
    U, G = torch.randn(n, n).triu().to(dtype), torch.randn(n, 20).to(dtype)
    assert torch.equal(tri_mm(U, G, "U", "F"), torch.mm(U, G))
    assert not torch.equal(tri_mm(U, G, "U", "F", min_block=32), torch.mm(U, G))  # blocking does change them


@pytest.mark.parametrize("args,match", [
    ((torch.eye(3), torch.eye(3), "X", "F"), "kind of A must be 'U', 'L' or 'F', got 'X'"),
    ((torch.eye(3), torch.eye(3), "F", "u"), "kind of B must be 'U', 'L' or 'F', got 'u'"),
    ((torch.ones(3, 4), torch.ones(4, 4), "U", "F"), r"triangular A must be a square matrix, got shape \(3, 4\)"),
    ((torch.ones(3, 3), torch.ones(3), "F", "L"), r"triangular B must be a square matrix, got shape \(3,\)"),
    ((torch.ones(3, 3), torch.ones(4, 2), "U", "F"), r"shapes \(3, 3\) and \(4, 2\) cannot be multiplied"),
])
def test_bad_inputs_name_the_problem(args, match):
    with pytest.raises(ValueError, match=match):
        tri_mm(*args)


def test_kron_with_blocked_products_follows_the_dense_run(monkeypatch):
    """Kron's factor products go through tri_mm; blocking only reorders sums, so the trajectories agree."""
    torch.manual_seed(0)
    w0 = torch.randn(70, 150) * 0.1
    grads = [torch.randn(70, 150) * 0.01 for _ in range(6)]
    runs = []
    for min_block in (10**9, 16):  # dense, then blocked down to 16 x 16 pieces
        monkeypatch.setattr(_triangular, "MIN_BLOCK", min_block)
        torch.manual_seed(3)  # Kron's preconditioner noise comes from the global RNG
        p = torch.nn.Parameter(w0.clone())
        opt = Kron([p], lr=0.01, weight_decay=0.1)
        for g in grads:
            p.grad = g.clone()
            opt.step()
        runs.append((p.detach().clone(), factors(opt.state[p])))
    (p_dense, q_dense), (p_block, q_block) = runs
    assert not torch.equal(p_dense, p_block)  # the blocked path really ran (sums in another order)
    torch.testing.assert_close(p_block, p_dense, rtol=1e-5, atol=1e-6)
    for a, b in zip(q_block, q_dense):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
        assert torch.equal(a, a.triu())


def test_the_bench_prints_one_row_per_product_with_small_errors():
    import subprocess
    import sys
    from pathlib import Path

    bench = Path(__file__).resolve().parents[2] / "bench" / "tri_mm.py"
    out = subprocess.run([sys.executable, str(bench), "--sizes", "96", "--blocks", "16,32", "--reps", "2"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    rows = [ln for ln in out.stdout.splitlines() if ln.startswith("| U x") or ln.startswith("| F x")]
    assert [r.split(" | ")[0] for r in rows] == ["| U x U, 96", "| U x F, 96 x 96·96 x 768", "| F x U, 768 x 96·96 x 96"]
    for r in rows:
        cells = r.strip("| ").split(" | ")
        assert len(cells) == 6 and all(float(c) >= 0 for c in cells[1:4]) and cells[4].endswith("x")  # times in ms
        assert float(cells[5]) < 1e-5  # max error relative to the largest entry, float32
