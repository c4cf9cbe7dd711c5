"""The training step's one source: modules that import only torch, numpy and the standard library.

optbench's loop imports them; `optbench export` inlines their source verbatim into the submission script, each
under its upstream banner: data (Dataloader), logformat (Setup), groups and schedule (Init & Optim
Hyperparams), training (Training and Validation). They never import optbench, nor each other.
"""
