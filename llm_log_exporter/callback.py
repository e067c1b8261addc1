"""Public import path of the LiteLLM callback: ``from llm_log_exporter.callback import UsageLogger``.

The code lives in ``llm_log_exporter.writer.callback``; this name is that very module (not a copy),
so ``import llm_log_exporter.callback as cb`` sees and sets the same objects.
"""

import sys

from llm_log_exporter.writer import callback as _callback

sys.modules[__name__] = _callback
