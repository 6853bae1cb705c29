"""`nasc search`: architecture search on a work queue, every sampled cell written as a .cell file.

The loop (paper §3, A.3): the strategy samples architectures into a queue; free workers pull one,
compile it in process, train it on the proxy task and report its validation accuracy; the strategy
learns from the results (PPO every 20). Identical architectures (by structural hash) are trained
once: a repeat reuses the reward and is counted as a duplicate.

Files under --out (nothing finished is ever lost):
  cells/<step>-<hash8>.cell   one canonical cell per sampled architecture, metadata = provenance
  ledger.jsonl                one line per finished result, appended, flushed and fsynced
  search.json                 the settings (read back by --resume; the directory itself is not
                              among them: a copied or moved search resumes where it now is)
  state.pt                    the strategy and the queue, replaced atomically after every event
  best.cell, rewards.png      the best architecture so far; reward vs models sampled (Figure 6)

Order of writes for a result: cell file (atomic) → ledger line (fsync) → state. After a kill, the
ledger is the truth: a queued child that has a ledger line is finished (its reward is replayed into
the strategy), one without is trained again.
"""

from nasc.runtime.search.child import ChildJob, evaluate_child, usable_cpus
from nasc.runtime.search.executors import LocalExecutor, RayExecutor
from nasc.runtime.search.ledger import cell_file, pareto, read_ledger, read_references, top
from nasc.runtime.search.loop import Search
from nasc.runtime.search.settings import SearchConfig, SearchError, SettingsError, load_config

__all__ = [
    "ChildJob",
    "LocalExecutor",
    "RayExecutor",
    "Search",
    "SearchConfig",
    "SearchError",
    "SettingsError",
    "cell_file",
    "evaluate_child",
    "load_config",
    "pareto",
    "read_ledger",
    "read_references",
    "top",
    "usable_cpus",
]
