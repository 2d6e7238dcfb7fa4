"""save_pretrained / from_pretrained: identical logits, and a clear CheckpointError for every broken folder."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch

from taskgraph.errors import CheckpointError
from taskgraph.model import TaskGraphModel
from taskgraph.model.base import model_from_config
from taskgraph.model.checkpoint import FORMAT_VERSION, MANIFEST, WEIGHTS
from taskgraph.spec.models import Spec


@pytest.fixture
def saved(spec_for, perturb, tmp_path: Path) -> tuple[TaskGraphModel, Path]:
    torch.manual_seed(0)
    model = TaskGraphModel(spec_for("bert", router="mhr", heads=2))
    perturb(model)
    return model.eval(), model.save_pretrained(tmp_path / "ckpt")


def logits(model: TaskGraphModel, batch) -> torch.Tensor:
    ids, mask = batch(6, 7)
    return model(ids, mask, [0, 1, 2, 2, 1, 0]).logits


def edit_manifest(folder: Path, change) -> None:
    manifest = json.loads((folder / MANIFEST).read_text())
    change(manifest)
    (folder / MANIFEST).write_text(json.dumps(manifest))


@pytest.mark.parametrize("family, router", [("bert", "mhr"), ("gpt2", "private"), ("llama", "poly")])
def test_round_trip_gives_identical_logits(spec_for, perturb, batch, tmp_path, family, router) -> None:
    torch.manual_seed(0)
    model = TaskGraphModel(spec_for(family, router=router, heads=2 if router == "mhr" else 1))
    perturb(model)
    model.eval().save_pretrained(tmp_path / "c")
    torch.manual_seed(123)  # a different global RNG state must not matter
    loaded = TaskGraphModel.from_pretrained(tmp_path / "c").eval()
    assert torch.equal(logits(model, batch), logits(loaded, batch))
    assert loaded.task_names == model.task_names and loaded.adapted_names == model.adapted_names


def test_manifest_says_what_is_inside(saved) -> None:
    model, folder = saved
    assert sorted(p.name for p in folder.iterdir()) == [MANIFEST, WEIGHTS]  # no tokenizer, no temp files
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["tasks"] == [
        {"name": "alpha", "num_labels": 2},
        {"name": "beta", "num_labels": 3},
        {"name": "gamma", "num_labels": 5},
    ]
    assert manifest["layout"] == {"layers": 4, "heads": 2, "skills": 3, "rank": 4, "alpha": 8.0, "linearized": False}
    assert manifest["adapted_modules"] == model.adapted_names
    assert manifest["spec"] == model.spec.model_dump(mode="json")
    assert manifest["base"]["weights_included"] is True  # built from a config: random init travels
    assert {"torch", "transformers", "safetensors"} <= set(manifest["versions"])
    tensors = manifest["weights"]["tensors"]
    assert tensors["base.encoder.layer.0.attention.self.query.A"] == [2, 3, 16, 4]
    assert tensors["router.logits"] == [3, 4, 2, 3] and tensors["heads.heads.2.weight"] == [5, 32]


def test_path_base_saves_only_the_trainable_state(spec_for, perturb, batch, tmp_path: Path) -> None:
    base_dir = tmp_path / "base"
    model_from_config(spec_for("bert").model.config, seed=5).save_pretrained(base_dir)
    fields = spec_for("bert").model_dump(mode="json")
    fields["model"].update(config=None, path=str(base_dir))
    spec = Spec.model_validate(fields)
    model = TaskGraphModel(spec)
    perturb(model)
    model.eval().save_pretrained(tmp_path / "c")
    manifest = json.loads((tmp_path / "c" / MANIFEST).read_text())
    assert manifest["base"]["weights_included"] is False
    assert all(k.startswith(("router.", "heads.")) or k.endswith((".A", ".B")) for k in manifest["weights"]["tensors"])
    loaded = TaskGraphModel.from_pretrained(tmp_path / "c").eval()
    assert torch.equal(logits(model, batch), logits(loaded, batch))

    # the same base in bfloat16 has the same fingerprint (values are sampled at bf16 precision)
    bf16 = model_from_config(spec_for("bert").model.config, seed=5).to(torch.bfloat16)
    in_bf16 = TaskGraphModel.from_pretrained(tmp_path / "c", base=bf16).eval()
    assert in_bf16.adapted[0][1].A.dtype == torch.bfloat16
    torch.testing.assert_close(logits(in_bf16, batch), logits(model, batch), rtol=0.1, atol=0.1)

    # another base given explicitly, or the base directory now holding another model: the fingerprint catches it
    other = model_from_config(spec_for("bert").model.config, seed=99)
    with pytest.raises(CheckpointError, match="the base model BertModel differs from the one it was saved with"):
        TaskGraphModel.from_pretrained(tmp_path / "c", base=other)
    model_from_config(spec_for("bert").model.config, seed=6).save_pretrained(base_dir)
    with pytest.raises(CheckpointError, match="differs from the one it was saved with"):
        TaskGraphModel.from_pretrained(tmp_path / "c")


def test_explicit_base_of_a_config_checkpoint_gets_the_saved_weights(saved, spec_for, batch) -> None:
    model, folder = saved
    other = model_from_config(spec_for("bert").model.config, seed=99)
    loaded = TaskGraphModel.from_pretrained(folder, base=other).eval()
    assert loaded.base is other
    assert torch.equal(logits(model, batch), logits(loaded, batch))


def test_nothing_is_unpickled(saved, batch, monkeypatch) -> None:
    model, folder = saved

    def refuse(*args, **kwargs):
        raise AssertionError("unpickling during from_pretrained")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    loaded = TaskGraphModel.from_pretrained(folder).eval()
    assert torch.equal(logits(model, batch), logits(loaded, batch))


def test_saving_again_replaces_and_device_argument(saved, perturb, batch) -> None:
    model, folder = saved
    perturb(model, seed=7)
    model.save_pretrained(folder)
    loaded = TaskGraphModel.from_pretrained(folder, device="cpu").eval()
    assert torch.equal(logits(model, batch), logits(loaded, batch))
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]


# ------------------------------------------------------------------ every broken folder
def test_missing_folder_or_manifest(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such folder"):
        TaskGraphModel.from_pretrained(tmp_path / "nope")
    with pytest.raises(CheckpointError, match=f"no {MANIFEST} in the folder"):
        TaskGraphModel.from_pretrained(tmp_path)


def test_manifest_not_json(saved) -> None:
    _, folder = saved
    (folder / MANIFEST).write_text('{"format": "taskgraph-checkpoint", ')
    with pytest.raises(CheckpointError, match="not valid JSON"):
        TaskGraphModel.from_pretrained(folder)


def test_manifest_of_something_else(saved) -> None:
    _, folder = saved
    (folder / MANIFEST).write_text('{"model_type": "bert"}')
    with pytest.raises(CheckpointError, match="not a taskgraph checkpoint manifest"):
        TaskGraphModel.from_pretrained(folder)


def test_wrong_format_version(saved) -> None:
    _, folder = saved
    edit_manifest(folder, lambda m: m.update(format_version=99))
    with pytest.raises(CheckpointError, match="format version 99; this taskgraph reads version 1"):
        TaskGraphModel.from_pretrained(folder)


def test_weights_missing(saved) -> None:
    _, folder = saved
    (folder / WEIGHTS).unlink()
    with pytest.raises(CheckpointError, match=f"{WEIGHTS} is missing"):
        TaskGraphModel.from_pretrained(folder)


def test_weights_truncated(saved) -> None:
    _, folder = saved
    data = (folder / WEIGHTS).read_bytes()
    (folder / WEIGHTS).write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        TaskGraphModel.from_pretrained(folder)


def test_weights_bytes_flipped(saved) -> None:
    _, folder = saved
    data = bytearray((folder / WEIGHTS).read_bytes())
    data[-10] ^= 0xFF  # inside the tensor data: safetensors alone would not notice
    (folder / WEIGHTS).write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256 does not match"):
        TaskGraphModel.from_pretrained(folder)


def test_unreadable_safetensors_is_caught(saved) -> None:
    """Without the manifest's size and checksum, safetensors' own error is turned into a CheckpointError."""
    _, folder = saved
    edit_manifest(folder, lambda m: m["weights"].update(bytes=None, sha256=None))
    (folder / WEIGHTS).write_bytes((folder / WEIGHTS).read_bytes()[:100])
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        TaskGraphModel.from_pretrained(folder)


def test_weights_do_not_match_manifest_tensor_table(saved) -> None:
    _, folder = saved
    edit_manifest(folder, lambda m: m["weights"]["tensors"].update({"router.logits": [3, 4, 2, 5]}))
    with pytest.raises(
        CheckpointError, match=r"router.logits has shape \[3, 4, 2, 3\] in model.safetensors but \[3, 4, 2, 5\]"
    ):
        TaskGraphModel.from_pretrained(folder)


def test_spec_that_builds_other_shapes(saved) -> None:
    _, folder = saved
    edit_manifest(folder, lambda m: m["spec"]["adapters"].update(rank=2))
    with pytest.raises(
        CheckpointError,
        match=r"does not fit the model its spec builds: .*shape \[2, 3, 16, 4\] in "
        r"model.safetensors but \[2, 3, 16, 2\]",
    ):
        TaskGraphModel.from_pretrained(folder)


def test_spec_with_an_extra_task(saved) -> None:
    _, folder = saved

    def add(m):
        m["spec"]["tasks"].append({"name": "delta", "num_labels": 2})
        m["tasks"].append({"name": "delta", "num_labels": 2})

    edit_manifest(folder, add)
    with pytest.raises(CheckpointError, match="missing from model.safetensors: heads.heads.3.bias"):
        TaskGraphModel.from_pretrained(folder)


def test_invalid_spec_in_manifest(saved) -> None:
    _, folder = saved
    edit_manifest(folder, lambda m: m["spec"]["router"].update(kind="mlp"))
    with pytest.raises(
        CheckpointError, match="spec in the manifest is not valid here: router.kind: .*unknown router 'mlp'"
    ):
        TaskGraphModel.from_pretrained(folder)


def test_task_list_disagrees_with_spec(saved) -> None:
    _, folder = saved
    edit_manifest(folder, lambda m: m["tasks"][0].update(num_labels=4))
    with pytest.raises(CheckpointError, match="task list .* does not match"):
        TaskGraphModel.from_pretrained(folder)


def test_corrupted_base_weights_in_checkpoint(saved, spec_for) -> None:
    """Weights swapped for another model's (with a consistent checksum) still fail on the fingerprint."""
    model, folder = saved
    other = TaskGraphModel(spec_for("bert", router="mhr", heads=2))
    with torch.no_grad():
        other.base.embeddings.word_embeddings.weight.add_(1.0)
    other_dir = other.save_pretrained(folder.parent / "other")
    edit_manifest(
        other_dir,
        lambda m: m["base"].update(fingerprint=json.loads((folder / MANIFEST).read_text())["base"]["fingerprint"]),
    )
    with pytest.raises(CheckpointError, match="differs from the one it was saved with"):
        TaskGraphModel.from_pretrained(other_dir)


# ----------------------------------------------------------------------------- a manifest is someone else's file
def test_a_manifest_describing_a_huge_model_is_refused_before_anything_is_built(saved) -> None:
    import resource
    import time

    _, folder = saved
    edit_manifest(folder, lambda m: m["spec"]["model"]["config"].update(hidden_size=131072, intermediate_size=131072))
    before, tick = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter()
    with pytest.raises(
        CheckpointError,
        match=r"its spec describes a model of [\d,]+ parameters \(BertModel, hidden "
        r"size 131072\) but model.safetensors holds [\d,]+; .*nothing was built",
    ):
        TaskGraphModel.from_pretrained(folder)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 200 and time.perf_counter() - tick < 10  # 131,072-wide would be 16+ GB


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda m: m["tasks"][0].update(num_labels="2"), r"tasks\.0\.num_labels: Input should be a valid integer"),
        (lambda m: m["weights"].update(bytes=-5), r"weights\.bytes: Input should be greater than or equal to 0"),
        (lambda m: m["weights"]["tensors"].update({"router.logits": [3, -4]}), r"weights\.tensors\.router\.logits\.1"),
        (lambda m: m["weights"].update(sha256="nothex"), r"weights\.sha256: String should match pattern"),
        (
            lambda m: m["base"].update(weights_included="yes"),
            r"base\.weights_included: Input should be a valid boolean",
        ),
        (lambda m: m.update(adapted_modules={"a": 1}), r"adapted_modules: Input should be a valid list"),
        (lambda m: m.update(spec=[1, 2]), r"spec: Input should be a valid dictionary"),
    ],
)
def test_manifest_entries_of_the_wrong_type_or_sign_name_the_field(saved, change, message) -> None:
    _, folder = saved
    edit_manifest(folder, change)
    with pytest.raises(CheckpointError, match=rf"manifest\.json: the manifest is malformed: .*{message}"):
        TaskGraphModel.from_pretrained(folder)


def test_the_file_header_is_checked_against_the_manifest_before_the_data_is_read(saved) -> None:
    _, folder = saved
    edit_manifest(folder, lambda m: m["weights"].update(bytes=None, sha256=None))  # an attacker edits both files
    data = bytearray((folder / WEIGHTS).read_bytes())
    length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + length])
    name = next(k for k in header if k != "__metadata__")
    header[name]["shape"] = [10**9, 10**9]
    text = json.dumps(header).encode()
    (folder / WEIGHTS).write_bytes(len(text).to_bytes(8, "little") + text + bytes(data[8 + length :]))
    with pytest.raises(CheckpointError, match=r"not a readable safetensors file \(tensor .* has shape \[1000000000"):
        TaskGraphModel.from_pretrained(folder)
    (folder / WEIGHTS).write_bytes((10**15).to_bytes(8, "little") + bytes(data[8:]))
    with pytest.raises(CheckpointError, match=r"not a readable safetensors file \(a header of 1000000000000000 bytes"):
        TaskGraphModel.from_pretrained(folder)
