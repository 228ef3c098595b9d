"""Register VDCNN with `transformers`' Auto classes as soon as they are loaded, without importing them eagerly.

Importing `transformers`' Auto classes and `PreTrainedModel` costs several seconds, which a command that only scores a
pool with fastText should not pay. So ``import svp_hf`` only installs this hook: when the modules behind
`AutoConfig`, `AutoModel*` and `AutoTokenizer` finish loading (now or later, in whatever order), the matching VDCNN
class is registered with them. If they are already loaded, registration happens at once.

This does not depend on `transformers`' private API: it watches the import of public module paths and then calls the
documented ``Auto*.register`` functions.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import logging
import sys
import threading

logger = logging.getLogger(__name__)

_CONFIG_AUTO = "transformers.models.auto.configuration_auto"
_MODELING_AUTO = "transformers.models.auto.modeling_auto"
_TOKENIZATION_AUTO = "transformers.models.auto.tokenization_auto"
# Each part is registered once the Auto modules it extends are loaded (registering imports the VDCNN module and,
# with it, `PreTrainedModel` or `PreTrainedTokenizer`; a user about to build a model pays that anyway).
_NEEDS = {
    "config": (_CONFIG_AUTO,),
    "model": (_CONFIG_AUTO, _MODELING_AUTO),
    "tokenizer": (_CONFIG_AUTO, _TOKENIZATION_AUTO),
}
# If an Auto module finishes loading while `transformers` is still initialising one of these base modules, the
# registration fails and is retried when that base module is done.
_WATCHED = frozenset(
    {name for names in _NEEDS.values() for name in names}
    | {"transformers.configuration_utils", "transformers.modeling_utils", "transformers.tokenization_python"}
)

_lock = threading.RLock()
_registered: set[str] = set()
_executed: set[str] = set()  # watched modules whose code has finished running
_in_progress = False
_again = False  # a watched module finished loading while registration was running


def _is_loaded(name: str) -> bool:
    if name in _executed:
        return True
    module = sys.modules.get(name)
    if module is None:
        return False
    spec = getattr(module, "__spec__", None)
    return not getattr(spec, "_initializing", False)


def _register(part: str) -> None:
    # Import from the defining modules, never through `transformers`' lazy top-level module: this may run while
    # `transformers` is still importing one of its own modules.
    from transformers.models.auto.configuration_auto import AutoConfig

    from .vdcnn.configuration_vdcnn import VDCNNConfig

    if part == "config":
        AutoConfig.register("vdcnn", VDCNNConfig, exist_ok=True)
    elif part == "model":
        from transformers.models.auto.modeling_auto import AutoModel, AutoModelForSequenceClassification

        from .vdcnn.modeling_vdcnn import VDCNNForSequenceClassification, VDCNNModel

        AutoModel.register(VDCNNConfig, VDCNNModel, exist_ok=True)
        AutoModelForSequenceClassification.register(VDCNNConfig, VDCNNForSequenceClassification, exist_ok=True)
    else:
        from transformers.models.auto.tokenization_auto import AutoTokenizer

        from .vdcnn.tokenization_vdcnn import VDCNNTokenizer

        AutoTokenizer.register(VDCNNConfig, slow_tokenizer_class=VDCNNTokenizer, exist_ok=True)


def register_ready(strict: bool = False) -> None:
    """Register every VDCNN part whose `transformers` modules are fully loaded (idempotent).

    A failure is logged and retried on the next trigger (``strict=True`` raises it instead): the hook must never
    break the user's own import of `transformers`.
    """
    global _in_progress, _again
    with _lock:
        if _in_progress:  # the imports below re-enter through the hook; the outer call goes round again
            _again = True
            return
        _in_progress = True
        try:
            _again = True
            while _again:
                _again = False
                for part, needs in _NEEDS.items():
                    if part in _registered or not all(_is_loaded(name) for name in needs):
                        continue
                    try:
                        _register(part)
                    except Exception as err:
                        if strict:
                            raise
                        logger.debug("svp-hf could not register VDCNN's %s with the Auto classes yet: %s", part, err)
                    else:
                        _registered.add(part)
        finally:
            _in_progress = False


_again = False  # a watched module finished loading while registration was running


class _AfterImportFinder(importlib.abc.MetaPathFinder):
    """Finds nothing itself; for a watched module it wraps the real loader to call `register_ready` afterwards."""

    def __init__(self):
        self._finding: set[str] = set()

    def find_spec(self, fullname, path, target=None):
        if fullname not in _WATCHED or fullname in self._finding:
            return None
        self._finding.add(fullname)
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._finding.discard(fullname)
        loader = getattr(spec, "loader", None)
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        run_module = loader.exec_module

        def exec_module(module):
            run_module(module)
            _executed.add(fullname)
            register_ready()

        loader.exec_module = exec_module  # this loader instance belongs to this one import
        return spec


_finder = _AfterImportFinder()


def install() -> None:
    """Register what is already loaded and watch for the rest (idempotent)."""
    if not any(isinstance(f, _AfterImportFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _finder)
    register_ready()
