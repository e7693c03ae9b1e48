"""UMAE data on real images: BreakHis (flat and nested layouts), views CSV, LGG slices as multi-sequence
samples; a tiny UMAE pre-trained on them lowers its reconstruction loss in a few CPU steps."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from MedGradePredictLib.pretrain.data import (MultiViewDataset, SingleViewDataset, breakhis_samples, read_breakhis,
                                              read_mri_cohort, read_views_csv)
from MedGradePredictLib.pretrain.model import MaskedAutoencoder, PretrainConfig
from MedGradeCoreLib.errors import InputError

PATIENT = "SOB_B_F-14-25197"
MAGS = ["40x", "100x", "200x", "400x"]


@pytest.fixture(scope="module")
def breakhis(sample) -> Path:
    return sample(f"pathology-breakhis/{PATIENT}-40-023.png").parent


@pytest.fixture(scope="module")
def lgg() -> Path:
    from MedGradeCoreLib.io import sample_lgg_cohort

    return sample_lgg_cohort()


def _nested(flat: Path, dest: Path) -> Path:
    """The BreakHis distribution's own layout: {benign,malignant}/SOB/<type>/<patient>/<mag>X/."""
    for img in read_breakhis(flat):
        cls, rest = img.patient_id.split("_")[1], img.patient_id.split("-", 1)[1]
        folder = dest / img.label / "SOB" / img.tumour_type / f"SOB_{cls}_{img.tumour_type}-{rest}" / f"{img.magnification}X"
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(img.path, folder / img.path.name)
    return dest


def test_breakhis_flat_and_nested_layouts(breakhis: Path, tmp_path: Path) -> None:
    images = read_breakhis(breakhis)
    assert len(images) == 12 and {i.label for i in images} == {"benign", "malignant"}
    samples, skipped = breakhis_samples(images)
    assert [s.patient_id for s in samples] == [PATIENT] and len(skipped) == 8  # the others have 40X only
    assert sorted(samples[0].views) == sorted(MAGS) and samples[0].label == "benign"
    assert samples[0].views["400x"][0].name == f"{PATIENT}-400-033.png"
    nested = _nested(breakhis, tmp_path / "BreaKHis_v1")
    n_samples, n_skipped = breakhis_samples(read_breakhis(nested))
    assert [(s.sample_id, {k: p.name for k, (p, _) in s.views.items()}) for s in n_samples] == \
        [(s.sample_id, {k: p.name for k, (p, _) in s.views.items()}) for s in samples]
    assert n_skipped == skipped
    # a second image at 100X: two samples, the single images of the other magnifications reused
    src = samples[0].views["100x"][0]
    extra = next(nested.rglob("100X")) / f"{PATIENT}-100-040.png"
    shutil.copy(src, extra)
    two, _ = breakhis_samples(read_breakhis(nested))
    assert len(two) == 2 and two[1].views["100x"][0].name == extra.name and two[1].views["40x"] == two[0].views["40x"]
    # a file in the wrong magnification folder, and a file that is not BreakHis-named
    wrong = extra.parent.parent / "40X" / extra.name
    shutil.move(extra, wrong)
    with pytest.raises(InputError, match=r"100X but it lies in folder 40X") as exc:
        read_breakhis(nested)
    assert str(wrong) in str(exc.value)
    wrong.unlink()
    (nested / "benign" / "notes.png").write_bytes(b"x")
    with pytest.raises(InputError, match="notes.png: not a BreakHis file name"):
        read_breakhis(nested)


def test_views_csv(breakhis: Path, tmp_path: Path) -> None:
    a, b = (breakhis / f"{PATIENT}-{m}.png" for m in ("40-023", "100-001"))
    csv = tmp_path / "views.csv"
    csv.write_text(f"sample_id,patient_id,label,near,far\ns1,p1,benign,{a},{b}\ns2,p1,benign,{b},\n")
    samples = read_views_csv(csv, ["near", "far"])
    assert [sorted(s.views) for s in samples] == [["far", "near"], ["near"]]
    item = MultiViewDataset(samples, ["near", "far"], (32, 48), 3)[1]
    assert item["views"].shape == (2, 3, 32, 48) and item["present"].tolist() == [True, False]
    assert item["views"][1].abs().sum() == 0 and abs(float(item["views"][0].mean())) < 1e-4
    csv.write_text("sample_id,patient_id,near,far\ns1,p1,missing.png,\n")
    with pytest.raises(InputError, match="missing.png: listed in views.csv line 2"):
        read_views_csv(csv, ["near", "far"])
    with pytest.raises(InputError, match="missing column"):
        read_views_csv(csv, ["near", "mid"])


def test_lgg_slices_are_samples_of_available_sequences(lgg: Path) -> None:
    chosen = {"TCGA_CS_4941", "TCGA_DU_6407", "TCGA_DU_7013"}  # all three; no T1c; FLAIR only
    samples = read_mri_cohort(lgg, ["t1", "t1c", "flair"], patients=chosen)
    by = {p: [s for s in samples if s.patient_id == p] for p in chosen}
    assert {p: sorted(by[p][0].views) for p in chosen} == {
        "TCGA_CS_4941": ["flair", "t1", "t1c"], "TCGA_DU_6407": ["flair", "t1"], "TCGA_DU_7013": ["flair"]}
    assert len(by["TCGA_CS_4941"]) == 23 and sum(s.extra["tumour"] for s in by["TCGA_CS_4941"]) == 8  # clinical.csv
    assert all(s.label == "G3" for s in by["TCGA_CS_4941"])
    ds = MultiViewDataset(by["TCGA_DU_6407"], ["t1", "t1c", "flair"], (64, 64), 1)
    item = ds[10]
    assert item["views"].shape == (3, 1, 64, 64) and item["present"].tolist() == [True, False, True]
    single = SingleViewDataset(samples, "t1c", (64, 64), 1, {"G2": 0, "G3": 1})
    assert {s.patient_id for s in single.samples} == {"TCGA_CS_4941"}  # T1c only where acquired
    with pytest.raises(InputError, match="has no t2"):
        read_mri_cohort(lgg, ["t2"])


def _fit(model: MaskedAutoencoder, views: torch.Tensor, present: torch.Tensor, steps: int) -> tuple[float, float]:
    """Masked reconstruction loss (fixed validation masks) before and after ``steps`` AdamW steps."""
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.05)

    def val() -> float:
        with torch.no_grad():
            return float(model(views, present, generator=torch.Generator().manual_seed(0))["loss"])

    before = val()
    for _ in range(steps):
        loss = model(views, present)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    return before, val()


def test_pretraining_lowers_loss_on_breakhis_patient_and_lgg_slices(breakhis: Path, lgg: Path) -> None:
    torch.manual_seed(0)
    samples, _ = breakhis_samples(read_breakhis(breakhis))
    item = MultiViewDataset(samples, MAGS, (64, 64), 3)[0]
    enc = {"image_size": 64, "patch_size": 8, "in_channels": 3, "dim": 64, "depth": 2, "heads": 4}
    model = MaskedAutoencoder(PretrainConfig(views=MAGS, encoder=enc))
    before, after = _fit(model, item["views"][None], item["present"][None], 30)
    assert after < 0.6 * before, (before, after)

    torch.manual_seed(0)
    lgg_samples = read_mri_cohort(lgg, ["t1", "t1c", "flair"], patients={"TCGA_CS_4941", "TCGA_DU_6407"})
    ds = MultiViewDataset(lgg_samples[::4], ["t1", "t1c", "flair"], (64, 64), 1)
    batch = torch.utils.data.default_collate([ds[i] for i in range(len(ds))])
    model = MaskedAutoencoder(PretrainConfig(views=["t1", "t1c", "flair"], encoder={**enc, "in_channels": 1}))
    before, after = _fit(model, batch["views"], batch["present"], 30)
    assert after < 0.6 * before, (before, after)
