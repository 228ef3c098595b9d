import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

import svp_hf  # noqa: F401  (registers VDCNN with the Auto classes)
from svp_hf.models import VDCNNConfig, VDCNNForSequenceClassification, VDCNNTokenizer
from svp_hf.models.vdcnn.modeling_vdcnn import kmax_pooling

TINY = dict(filters=[8, 8, 16, 16], hidden_size=32, embedding_size=8, max_chars=128)


def conv_params(blocks, filters=(64, 128, 256, 512), emb=16):
    """Parameters of the convolutional trunk counted from the architecture: stem, blocks (two conv3 without
    bias + two BatchNorms each)."""
    total = emb * filters[0] * 3 + filters[0]  # stem conv with bias
    c_in = filters[0]
    for c, n in zip(filters, blocks):
        for _ in range(n):
            total += c_in * c * 3 + c * c * 3 + 4 * c
            c_in = c
    return total


@pytest.mark.parametrize(
    "depth, blocks", [(9, (1, 1, 1, 1)), (17, (2, 2, 2, 2)), (29, (5, 5, 2, 2)), (49, (8, 8, 5, 3))]
)
def test_auto_classes_and_parameter_counts(depth, blocks):
    config = AutoConfig.for_model("vdcnn", depth=depth, num_labels=4)
    assert isinstance(config, VDCNNConfig) and config.blocks_per_stage == list(blocks)
    model = AutoModelForSequenceClassification.from_config(config)
    assert isinstance(model, VDCNNForSequenceClassification)
    n = sum(p.numel() for p in model.parameters())
    embedding = 69 * 16
    fc = 512 * 8 * 2048 + 2048 + 2048 * 2048 + 2048 + 2048 * 4 + 4
    assert n == embedding + conv_params(blocks) + fc


AUTO = "from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer\n"
AFTER_IMPORT = {  # whatever the user imported first, `import svp_hf` is all it takes
    "svp_hf first": "import svp_hf\n" + AUTO,
    "transformers first": AUTO + "import svp_hf\n",
    "PreTrainedModel mid-way": "import svp_hf\nfrom transformers import BertModel\n" + AUTO,
}


@pytest.mark.parametrize("order", list(AFTER_IMPORT))
def test_import_svp_hf_registers_auto_classes_in_any_import_order(order, tmp_path):
    script = AFTER_IMPORT[order] + textwrap.dedent(f"""
        import sys
        model = AutoModelForSequenceClassification.from_config(AutoConfig.for_model("vdcnn", depth=9, num_labels=4))
        model.save_pretrained({str(tmp_path)!r})
        from svp_hf.models import VDCNNTokenizer
        VDCNNTokenizer().save_pretrained({str(tmp_path)!r})
        tokenizer = AutoTokenizer.from_pretrained({str(tmp_path)!r})
        again = AutoModelForSequenceClassification.from_pretrained({str(tmp_path)!r})
        print(type(model).__name__, type(tokenizer).__name__, type(again).__name__)
        """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-3:] == [
        "VDCNNForSequenceClassification",
        "VDCNNTokenizer",
        "VDCNNForSequenceClassification",
    ]


def test_import_svp_hf_does_not_import_transformers():
    script = (
        "import sys, svp_hf; print(sorted(m for m in sys.modules if m.split('.')[0] in ('transformers', 'torch')))"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


def test_bad_config_values_are_rejected():
    with pytest.raises(ValueError, match="depth must be one of"):
        VDCNNConfig(depth=10)
    with pytest.raises(ValueError, match="downsampling"):
        VDCNNConfig(downsampling="avg")


@pytest.mark.parametrize("downsampling", ["maxpool", "conv", "kmax"])
@pytest.mark.parametrize("shortcut", [False, True])
def test_save_pretrained_round_trip_gives_identical_logits(tmp_path, downsampling, shortcut):
    config = VDCNNConfig(depth=9, num_labels=4, downsampling=downsampling, shortcut=shortcut, **TINY)
    torch.manual_seed(0)
    model = VDCNNForSequenceClassification(config).eval()
    tokenizer = VDCNNTokenizer(model_max_length=128)
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    loaded_tok = AutoTokenizer.from_pretrained(tmp_path)
    assert isinstance(loaded_tok, VDCNNTokenizer)
    texts = ["Oil prices rise as supply worries grow", "", "Ünïcödé — text"]
    with torch.no_grad():
        a = model(**tokenizer(texts, padding="max_length", truncation=True, return_tensors="pt")).logits
        b = loaded(**loaded_tok(texts, padding="max_length", truncation=True, return_tensors="pt")).logits
    assert torch.equal(a, b)


def test_tokenizer_edge_cases():
    tok = VDCNNTokenizer()
    enc = tok(["", "Héllo\nWorld", "x" * 5000], padding="max_length", truncation=True)
    assert [len(ids) for ids in enc["input_ids"]] == [1014, 1014, 1014]
    assert enc["attention_mask"][0] == [0] * 1014  # empty string: all padding
    ids = enc["input_ids"][1][:11]
    assert ids[1] == tok.unk_token_id  # é is outside the alphabet
    assert tok.convert_ids_to_tokens(ids) == ["h", "<unk>", "l", "l", "o", " ", "w", "o", "r", "l", "d"]
    assert sum(enc["attention_mask"][2]) == 1014  # truncated to the maximum length
    assert tok.vocab_size == 69


def test_kmax_pooling_keeps_order():
    x = torch.tensor([[[1.0, 5.0, 3.0, 4.0, 2.0]]])
    assert kmax_pooling(x, 3).tolist() == [[[5.0, 3.0, 4.0]]]


def test_loss_goes_down_and_beats_chance_on_real_ag_news(ag_train):
    """A small VDCNN-9 (256 characters, narrow filters) learns AG News within 600 steps of batch 32."""
    torch.manual_seed(0)
    config = VDCNNConfig(depth=9, num_labels=4, filters=[16, 16, 32, 32], hidden_size=64, max_chars=256)
    model = VDCNNForSequenceClassification(config)
    tok = VDCNNTokenizer(model_max_length=256)
    train, held_out = ag_train.select(range(14000)), ag_train.select(range(14000, 15000))
    enc = tok(list(train["text"]), padding="max_length", truncation=True, return_tensors="pt")
    labels = torch.tensor(list(train["label"]))
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    losses = []
    model.train()
    for step in range(600):
        batch = torch.randint(0, len(labels), (32,), generator=torch.Generator().manual_seed(step))
        out = model(input_ids=enc["input_ids"][batch], labels=labels[batch])
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        losses.append(out.loss.item())
    assert np.mean(losses[-50:]) < np.mean(losses[:50]) - 0.3
    model.eval()
    with torch.no_grad():
        test_enc = tok(list(held_out["text"]), padding="max_length", truncation=True, return_tensors="pt")
        predictions = model(**test_enc).logits.argmax(-1)
    accuracy = (predictions == torch.tensor(list(held_out["label"]))).float().mean().item()
    assert accuracy > 0.45  # chance is 0.25


def test_vectorised_encoding_matches_the_tokenizer(ag_train):
    tokenizer = VDCNNTokenizer()
    texts = [
        *ag_train.select(range(300))["text"],
        "",
        "Ünïcode café ΣΑΣ “quotes” 😀 İstanbul",
        "a\nb\tc\rd",
        "x" * 3000,
    ]
    fast = tokenizer.encode_batch(texts, 256)
    slow = tokenizer(texts, padding="max_length", truncation=True, max_length=256)
    np.testing.assert_array_equal(fast["input_ids"], np.array(slow["input_ids"]))
    np.testing.assert_array_equal(fast["attention_mask"], np.array(slow["attention_mask"]))
    assert tokenizer.encode_batch([None], 8)["input_ids"].tolist() == [[0] * 8]


def test_wordpiece_vocabulary_is_deterministic(ag_train):
    from svp_hf.training import train_wordpiece

    texts = list(ag_train.select(range(2000))["text"])
    a, b = train_wordpiece(texts, vocab_size=3000), train_wordpiece([texts[:1000], texts[1000:]], vocab_size=3000)
    assert a.get_vocab() == b.get_vocab() and a.vocab_size == 3000
    tokens = a.tokenize("Reuters reported unprecedented profits")
    assert "[UNK]" not in tokens and tokens[0] == "reuters"
