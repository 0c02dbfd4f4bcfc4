"""ChokePoint ground truth: parsing, sequence discovery, face crops, split by sequence, detector fallback."""

from __future__ import annotations

import shutil
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from train_fixtures import make_chokepoint, tiny_flags

from vsr.errors import DataError
from vsr.pipelines.face.geometry import FaceBox
from vsr.pipelines.train.chokepoint import find_sequences, parse_groundtruth
from vsr.pipelines.train.config_toml import resolve
from vsr.pipelines.train.data import build_datasets, index_chokepoint, split_by_group


def test_parse_groundtruth_skips_empty_frames(tmp_path):
    root = make_chokepoint(tmp_path, sequences=("P1E_S1_C1",), frames=6, empty_every=3)
    anns = parse_groundtruth(root / "groundtruth" / "P1E_S1_C1.xml")
    # frames 2 and 5 are written as <frame number="..."/>
    assert [a.frame for a in anns] == ["00001000", "00001001", "00001003", "00001004"]
    assert anns[0].person == "0001"
    assert anns[0].left == (24.0, 17.0) and anns[0].right == (38.0, 17.0)


def test_malformed_xml_names_file_and_line(tmp_path):
    bad = tmp_path / "P1E_S1_C1.xml"
    bad.write_text(
        '<dataset name="x">\n<frames>\n<frame number="1">\n<person id="1"><leftEye x="1" y="2">\n</frames>'
    )
    with pytest.raises(DataError, match=r"P1E_S1_C1\.xml: malformed XML at line 5"):
        parse_groundtruth(bad)


def test_person_without_eye_and_non_numeric_coordinates(tmp_path):
    xml = tmp_path / "s.xml"
    xml.write_text(
        '<dataset><frames><frame number="7"><person id="1"><leftEye x="1" y="2"/></person></frame></frames></dataset>'
    )
    with pytest.raises(DataError, match="frame 7 has a person without <rightEye>"):
        parse_groundtruth(xml)
    xml.write_text(
        '<dataset><frames><frame number="7"><person id="1"><leftEye x="a" y="2"/>'
        '<rightEye x="3" y="2"/></person></frame></frames></dataset>'
    )
    with pytest.raises(DataError, match="numeric x and y"):
        parse_groundtruth(xml)


def test_missing_frame_named_in_xml_is_an_error(tmp_path):
    root = make_chokepoint(tmp_path / "cp", sequences=("P1E_S1_C1",), frames=3, empty_every=0)
    (root / "P1E_S1" / "P1E_S1_C1" / "00001001.jpg").unlink()
    cfg = resolve(flags=tiny_flags(root, tmp_path / "run"))
    with pytest.raises(DataError, match=r"frame 00001001 is annotated but .*00001001\.jpg does not exist"):
        index_chokepoint(root, cfg)


def test_sequences_are_found_with_their_xml(tmp_path):
    root = make_chokepoint(tmp_path, frames=2)
    seqs = find_sequences(root)
    assert [s.name for s in seqs] == ["P1E_S1_C1", "P1E_S2_C1", "P2L_S1_C1"]
    assert all(s.xml is not None and s.xml.name == f"{s.name}.xml" for s in seqs)
    assert [s.session for s in seqs] == ["P1E_S1", "P1E_S2", "P2L_S1"]
    with pytest.raises(DataError, match="no ChokePoint sequence folders"):
        find_sequences(root / "groundtruth")
    # a single sequence folder finds its XML two levels up
    (one,) = find_sequences(root / "P1E_S2" / "P1E_S2_C1")
    assert one.xml == root / "groundtruth" / "P1E_S2_C1.xml"


def test_cameras_of_one_session_stay_on_one_side_of_the_split(tmp_path):
    root = make_chokepoint(tmp_path / "cp", sequences=("P1E_S1_C1", "P1E_S1_C2", "P1E_S2_C1"), frames=2)
    cfg = resolve(flags=tiny_flags(root, tmp_path / "run", **{"data.val_fraction": 0.5}))
    train_items, val_items = split_by_group(index_chokepoint(root, cfg), 0.5)
    train_dirs = {i.path.parent.name for i in train_items}
    val_dirs = {i.path.parent.name for i in val_items}
    assert {frozenset(train_dirs), frozenset(val_dirs)} == {
        frozenset({"P1E_S1_C1", "P1E_S1_C2"}),
        frozenset({"P1E_S2_C1"}),
    }


def test_split_is_by_sequence_and_crops_have_the_hr_size(tmp_path):
    root = make_chokepoint(tmp_path / "cp", frames=4)
    cfg = resolve(flags=tiny_flags(root, tmp_path / "run"))
    train_set, val_set, skipped = build_datasets(cfg)
    assert skipped == []
    train_groups = {i.group for i in train_set.items}
    val_groups = {i.group for i in val_set.items}
    assert len(train_groups) == 2 and len(val_groups) == 1 and not train_groups & val_groups
    # 4 frames per sequence, one of them empty -> 3 annotated faces per sequence
    assert len(train_set) == 6 and len(val_set) == 3
    sample = train_set[0]
    assert sample["hr"].shape == (3, 32, 32) and sample["lr"].shape == (3, 16, 16)
    assert sample["mask"].shape == (1, 32, 32) and float(sample["hr"].max()) <= 1.0
    # the same split every time, independent of where the data lives
    again, _ = split_by_group(index_chokepoint(root, cfg), 0.34)
    assert {i.group for i in again} == train_groups


def test_sequence_without_xml_uses_the_detector(tmp_path, monkeypatch):
    root = make_chokepoint(tmp_path / "cp", frames=4)
    (root / "groundtruth" / "P2L_S1_C1.xml").unlink()
    cfg = resolve(flags=tiny_flags(root, tmp_path / "run", **{"data.frame_every": 2}))

    def fake_detector(image):
        assert image.dtype == np.uint8 and image.shape == (48, 64, 3)
        return [SimpleNamespace(box=(16.0, 8.0, 48.0, 40.0), score=0.9)]

    import vsr.pipelines.train.data as data

    monkeypatch.setattr(data, "make_detector", lambda name, why: fake_detector)
    index = index_chokepoint(root, cfg)
    detected = [i for i in index.items if i.group == "chokepoint:P2L_S1"]
    assert len(detected) == 2  # frames 0 and 2 of 4
    # the face mode's calibration: side 1.5 * sqrt(w * h), centre 0.1 * h below the box centre
    assert detected[0].box == FaceBox(cx=32.0, cy=pytest.approx(24 + 3.2), side=pytest.approx(48.0))


def test_sequence_without_xml_and_no_detector_is_a_clear_error(tmp_path, monkeypatch):
    root = make_chokepoint(tmp_path / "cp", sequences=("P1E_S1_C1",), frames=2)
    shutil.rmtree(root / "groundtruth")
    cfg = resolve(flags=tiny_flags(root, tmp_path / "run"))
    monkeypatch.setitem(sys.modules, "vsr.pipelines.face.detect", None)  # import fails
    with pytest.raises(
        DataError, match="P1E_S1_C1 has no ground-truth XML, but no face detector is available"
    ):
        index_chokepoint(root, cfg)
