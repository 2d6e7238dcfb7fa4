"""``bench quality --suite real-gen``: text-to-text tasks with choices on a BERT2BERT warm-started from a (tiny,
local) BERT, every cell beside the same tasks with classification heads; the heads twin's spec; bad configs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import BertConfig, BertModel

from benchmarks.cli import main
from benchmarks.quality.real_gen import beside, heads_twin, real_gen_suite
from benchmarks.quality.suites import QualityError
from benchmarks.quality_tables import main as tables
from benchmarks.quality_tables import quality_block
from tests.train.test_generative_train import WORDS, write_data

TEMPLATE = "review : {text}"


def tiny_config(folder: Path) -> Path:
    """A local tiny BERT with a WordPiece tokenizer, two review tasks of two families cast with choices."""
    write_data(folder)  # folder/tok (the vocabulary) and folder/rt.jsonl (20 reviews, labels 0 / 1)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=5 + len(WORDS),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
    )
    BertModel(config).save_pretrained(folder / "base")
    from transformers import BertTokenizerFast

    BertTokenizerFast.from_pretrained(str(folder / "tok")).save_pretrained(folder / "base")
    opinions = [
        {"text": f"the movie was {w}", "label": int(w in ("good", "fun"))} for w in ("good", "bad", "fun", "dull")
    ]
    (folder / "op.jsonl").write_text("".join(json.dumps(r) + "\n" for r in opinions * 5))
    spec = folder / "real-gen.yaml"
    spec.write_text(
        "name: tiny-gen\n"
        f"model: {{path: '{folder / 'base'}', warm_start: encoder-decoder, max_length: 16, target_modules: [query, value]}}\n"
        "adapters: {rank: 2, alpha: 4.0, skills: 2}\n"
        "tasks:\n"
        f"  - {{name: rt, family: sentiment, objective: generate, template: '{TEMPLATE}', choices: [bad, good],"
        " max_new_tokens: 2, data: {source: jsonl, path: rt.jsonl}}\n"
        f"  - {{name: op, family: opinion, objective: generate, template: '{TEMPLATE}', choices: [dull, fun],"
        " max_new_tokens: 2, data: {source: jsonl, path: op.jsonl}}\n"
    )
    return spec


def test_the_heads_twin_is_the_same_tasks_as_classifiers(tmp_path: Path):
    suite = real_gen_suite(config=tiny_config(tmp_path))
    assert suite.name == "real-gen" and suite.held_out == () and suite.families == {"rt": "sentiment", "op": "opinion"}
    twin = heads_twin(suite)
    assert twin.name == "real-gen-heads" and twin.base_dir == suite.base_dir and twin.budget == suite.budget
    assert "warm_start" not in twin.base["model"] and twin.base["model"]["pooling"] == "mean"
    assert twin.base["tasks"][0] == {
        "name": "rt",
        "family": "sentiment",
        "num_labels": 2,
        "data": {"source": "jsonl", "path": "rt.jsonl"},
    }
    assert suite.base["tasks"][0]["choices"] == ["bad", "good"]  # the generative suite is left as it was


def test_a_tiny_real_gen_bench_runs_both_suites_and_pairs_them(tmp_path: Path, capsys):
    config = tiny_config(tmp_path)
    out = tmp_path / "bench"
    args = ["quality", "--suite", "real-gen", "--config", str(config), "--out", str(out)]
    args += [
        "--seeds",
        "2",
        "--steps",
        "3",
        "--batch-size",
        "8",
        "--lrs",
        "1e-2",
        "--routers",
        "shared,poly",
        "--max-length",
        "16",
    ]
    assert main([*args, "--json", str(tmp_path / "q.json")]) == 0
    result = json.loads((tmp_path / "q.json").read_text())["suites"]
    assert set(result) == {"real-gen", "real-gen-heads"}
    gen, heads = result["real-gen"], result["real-gen-heads"]
    assert [r["router"] for r in gen["routers"]] == ["shared", "poly"] == [r["router"] for r in heads["routers"]]
    cell = json.loads((out / "real-gen" / "train" / "poly" / "lr0.01" / "seed1" / "eval.json").read_text())
    assert set(cell["test"]["tasks"]) == {"rt", "op"} and cell["test"]["tasks"]["rt"]["n"] == 2  # 20 rows: 2 test
    assert (out / "real-gen-heads" / "train" / "poly" / "lr0.01" / "seed1" / "eval.json").is_file()
    pairs = {r["router"]: r for r in gen["beside"]}
    poly = pairs["poly"]["generate_minus_heads"]
    gen_poly = next(r for r in gen["routers"] if r["router"] == "poly")["test"]["values"]
    heads_poly = next(r for r in heads["routers"] if r["router"] == "poly")["test"]["values"]
    assert poly["differences"] == pytest.approx([a - b for a, b in zip(gen_poly, heads_poly)])
    assert set(pairs["poly"]["families"]) == {"sentiment", "opinion"}
    table = (out / "real-gen" / "beside.md").read_text()
    assert "| poly |" in table and "sentiment (t2t / heads)" in table
    assert gen["beside"] == beside(gen, heads)
    results = tmp_path / "results"
    results.mkdir()
    argv = [str(out / "real-gen" / "quality.json"), "--name", "g", "--command", "c", "--results", str(results)]
    assert tables(argv) == 0  # the heads twin read from the sibling folder
    record = json.loads((results / "g.json").read_text())
    assert record["beside"] == gen["beside"] and [r["router"] for r in record["heads"]["routers"]] == ["shared", "poly"]
    block = quality_block(record, "g")
    assert "| poly |" in block and "sentiment (t2t / heads)" in block and "test: opinion" in block
    poly = next(r for r in record["routers"] if r["router"] == "poly")
    opinion = poly["families"]["opinion"]
    assert "| poly | 0.01 |" in block and (f"{opinion['mean']:.3f}" in block.split("| poly | 0.01 |")[1].split("\n")[0])
    diffs = [r["generate_minus_heads"] for r in record["beside"]]
    below = sum(1 for d in diffs if d["ci_high"] is not None and d["ci_high"] < 0)
    low, high = min(d["mean"] for d in diffs), max(d["mean"] for d in diffs)
    assert f"the interval lies below 0 for {below} of 2 routers" in block and f"span {low:+.3f} to {high:+.3f}" in block
    (out / "real-gen-heads" / "quality.json").unlink()
    assert tables(argv) == 2  # no heads twin beside it
    assert "cannot read the heads twin's quality result" in capsys.readouterr().err


def test_a_config_whose_cells_do_not_validate_is_exit_2_before_any_training(tmp_path: Path, capsys):
    config = tiny_config(tmp_path)
    config.write_text(config.read_text().replace("[dull, fun]", "[no, yes]"))  # YAML 1.1 reads booleans
    out = tmp_path / "bench"
    assert main(["quality", "--suite", "real-gen", "--config", str(config), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "the shared cells' spec is not valid: tasks.1.choices.0: Input should be a valid string" in err, err
    assert "Traceback" not in err and not (out / "real-gen").exists()


def test_a_config_whose_tasks_are_not_text_to_text_is_refused(tmp_path: Path):
    config = tiny_config(tmp_path)
    config.write_text(config.read_text().replace("objective: generate, ", "", 1))
    with pytest.raises(QualityError, match=r"tasks \['rt'\] are not text-to-text with choices"):
        real_gen_suite(config=config)


def test_a_warm_started_encoder_decoder_checks_max_length_against_its_encoders_positions(tmp_path: Path):
    """BERT2BERT's config holds the positions under ``encoder``: a prompt longer than them is caught before
    building, as for any base (here 48 > 32)."""
    from taskgraph.errors import ModelError
    from taskgraph.model.footprint import plan_model
    from taskgraph.spec import load_spec

    config = tiny_config(tmp_path)
    plan_model(load_spec(config))  # max_length 16: fits
    config.write_text(config.read_text().replace("max_length: 16", "max_length: 48"))
    with pytest.raises(ModelError, match="model.max_length 48 is longer than the model's 32 position embeddings"):
        plan_model(load_spec(config))
