"""Layer-wise probing with the ten SentEval probing tasks (Conneau et al., 2018); see docs/PROBING.md.

- ``hmtl.probing.tasks``: the tasks, their SentEval file names, reading and writing the format;
- ``hmtl.probing.build``: building the tasks from UD treebanks (``probing/build_tasks.py``);
- ``hmtl.probing.extract``: pooled sentence vectors per layer, cached in HDF5 (``encode_dataset``);
- ``hmtl.probing.probe``: logistic regression / MLP probes with SentEval's protocol (``protocol`` builtin or senteval);
- ``hmtl.probing.logreg``: the batched L-BFGS behind the logistic regressions;
- ``hmtl.probing.baselines``: majority, random word vectors, bag of GloVe, untrained model;
- ``hmtl.probing.senteval_bridge``: the same through SentEval when it is installed;
- ``hmtl.probing.run`` / ``commands``: the table, report and command lines (``probing/senteval_layers.py``).
"""
from hmtl.probing.errors import ProbingError, SentEvalNotInstalledError, UnknownLayerError, UnknownTaskError
from hmtl.probing.extract import encode_dataset, model_encoder, pool
from hmtl.probing.probe import ProbeConfig, majority_baseline, probe, probe_task
from hmtl.probing.tasks import TASKS, ProbingData, get_task, load_task, read_probing_file, write_probing_file

__all__ = ["ProbingError", "SentEvalNotInstalledError", "UnknownLayerError", "UnknownTaskError", "encode_dataset",
           "model_encoder", "pool", "ProbeConfig", "majority_baseline", "probe", "probe_task", "TASKS",
           "ProbingData", "get_task", "load_task", "read_probing_file", "write_probing_file"]
