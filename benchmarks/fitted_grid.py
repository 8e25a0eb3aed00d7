"""NFE 4 with the fitted and tuned grids against Euler at 32 and the converged ODE (2D suite).

    python benchmarks/fitted_grid.py   # after training the four runs named in RUNS

Each run is sampled 3000 times with two seeds; sliced W2 (1024 projections) against fresh target
draws, averaged over the seeds. Results: benchmarks/results/fitted_grid.json.
"""
import torch, time, json
torch.set_num_threads(1)
from interpgen.pipeline import Pipeline
from interpgen_plugins.eval.metrics import sliced_wasserstein
import interpgen as ig
from interpgen_plugins.datasets import shapes
import sys
# run directories of the default recipe (checkerboard) and recipes/2d/{moons,eight_gaussians,spirals}.toml,
# e.g. `interpgen train recipes/2d/moons.toml --output /tmp/fr/moons`; override with arguments name=dir
RUNS = dict([("checkerboard", "/tmp/fr/checkerboard"), ("moons", "/tmp/fr/moons"),
             ("eight_gaussians", "/tmp/fr/eight_gaussians"), ("spirals", "/tmp/fr/spirals")],
            **dict(a.split("=", 1) for a in sys.argv[1:]))
runs = list(RUNS.items())
specs=[("euler, NFE 32", ig.part("sampler","euler",steps=32)),("euler, NFE 128", ig.part("sampler","euler",steps=128)),
       ("midpoint, NFE 128", ig.part("sampler","midpoint",steps=64)),
       ("euler, NFE 4", ig.part("sampler","euler",steps=4)),("midpoint, NFE 4", ig.part("sampler","midpoint",steps=2)),
       ("midpoint tuned, NFE 4", ig.part("sampler","midpoint",steps=2,grid="tuned")),
       ("euler fitted, NFE 4", ig.part("sampler","euler",steps=4,grid="fitted")),
       ("midpoint fitted, NFE 4", ig.part("sampler","midpoint",steps=2,grid="fitted")),
       ("heun fitted, NFE 4", ig.part("sampler","heun",steps=2,grid="fitted")),
       ("euler fitted, NFE 8", ig.part("sampler","euler",steps=8,grid="fitted"))]
out={}
for name, run in runs:
    pipe=Pipeline.load(run)
    row={}
    for seed in (1,2):
        ref=getattr(shapes,name)(3000, torch.Generator().manual_seed(100+seed))
        sw=lambda x: float(sliced_wasserstein(x, ref, num_projections=1024, generator=torch.Generator().manual_seed(7)))
        for label, spec in specs:
            row.setdefault(label,[]).append(sw(pipe.sample(3000, sampler=spec, seed=seed).x))
    out[name]={k: sum(v)/len(v) for k,v in row.items()}
    print(name, {k: round(v,4) for k,v in out[name].items()}, flush=True)
json.dump(out, open("/work/main/benchmarks/results/fitted_grid.json","w"), indent=2)
