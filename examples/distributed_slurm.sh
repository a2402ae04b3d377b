#!/bin/bash
# Data-parallel training under Slurm: 2 machines x 4 ranks each.
#   sbatch examples/distributed_slurm.sh
#SBATCH --job-name=ember-ddp
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=4
#SBATCH --cpus-per-task=4
#SBATCH --time=00:30:00
set -euo pipefail
export OMP_NUM_THREADS=$SLURM_CPUS_PER_TASK EMBER_NUM_THREADS=$SLURM_CPUS_PER_TASK
# a rank that dies makes the others stop after this many seconds (default 30)
export EMBER_DIST_TIMEOUT=60

# srun starts one process per task and MPICH reads its rank from Slurm's PMI
srun --mpi=pmi2 python examples/distributed_train.py --epochs 5 --zero

# Where srun's PMI does not work with this MPI build, MPICH's own launcher reads the same
# allocation (the machines and tasks Slurm granted) and starts the ranks through Slurm:
#   mpiexec -launcher slurm -n "$SLURM_NTASKS" python examples/distributed_train.py --zero
