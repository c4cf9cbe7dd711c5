"""`python -m optbench ...` (also what `torchrun -m optbench run ...` executes on each rank)."""

from optbench.cli import main

if __name__ == "__main__":
    main()
