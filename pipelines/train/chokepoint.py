"""ChokePoint ground truth: sequence discovery and the per-camera eye-position XML.

Layout (as distributed)::

    ROOT/P1E_S1/P1E_S1_C1/00000123.jpg        frames, 800x600, 30 fps
    ROOT/groundtruth/P1E_S1_C1.xml             one XML per camera sequence

    <dataset name="P1E_S1_C1"><frames>
      <frame number="00000123"><person id="0001">
        <leftEye x="..." y="..."/><rightEye x="..." y="..."/></person></frame>
      <frame number="00000124"/>                  (no person in this frame)
    ...

Frames are folders of JPEGs named by frame number; a sequence's XML is looked
up in ``ROOT/groundtruth/`` first and then beside the frames.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from vsr.errors import DataError
from vsr.media.image import IMAGE_SUFFIXES as FRAME_SUFFIXES


@dataclass(frozen=True)
class EyeAnnotation:
    """One person's eye centres in one frame (pixels)."""

    frame: str
    person: str
    left: tuple[float, float]
    right: tuple[float, float]


@dataclass(frozen=True)
class Sequence:
    """A camera sequence: its frame folder, ground-truth XML (None when there is none) and session."""

    name: str
    frames_dir: Path
    xml: Path | None
    # The recording a camera sequence belongs to (``P1E_S1`` for ``P1E_S1/P1E_S1_C1``): its cameras
    # film the same people at the same moment, so they must land on the same side of a split.
    session: str = ""

    def frame_path(self, number: str) -> Path:
        """The image file of a frame number (any of the frame suffixes)."""
        for suffix in FRAME_SUFFIXES:
            p = self.frames_dir / f"{number}{suffix}"
            if p.is_file():
                return p
        return self.frames_dir / f"{number}.jpg"

    def frame_files(self) -> list[Path]:
        """All frame images of the sequence, in frame order."""
        return sorted(p for p in self.frames_dir.iterdir() if p.suffix.lower() in FRAME_SUFFIXES)


def _point(elem: ET.Element | None, what: str, path: Path, frame: str) -> tuple[float, float]:
    if elem is None:
        raise DataError(f"{path}: frame {frame} has a person without <{what}>")
    try:
        return float(elem.attrib["x"]), float(elem.attrib["y"])
    except (KeyError, ValueError):
        raise DataError(f"{path}: frame {frame}: <{what}> needs numeric x and y, got {elem.attrib}") from None


def parse_groundtruth(path: Path) -> list[EyeAnnotation]:
    """Every annotated person in a ChokePoint XML file; frames without a person contribute nothing.

    Raises ``DataError`` naming the file (and line, for malformed XML).
    """
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        line, column = exc.position
        reason = str(exc).split(":")[0]  # expat appends ": line L, column C" itself
        raise DataError(f"{path}: malformed XML at line {line}, column {column} ({reason})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ground truth ({exc.strerror or exc})") from None
    if root.tag != "dataset":
        raise DataError(
            f"{path}: not a ChokePoint ground-truth file (root element <{root.tag}>, expected <dataset>)"
        )
    found = []
    for frame in root.iter("frame"):
        number = frame.attrib.get("number")
        if not number:
            raise DataError(f"{path}: a <frame> without a number attribute")
        for person in frame.iter("person"):
            found.append(
                EyeAnnotation(
                    frame=number,
                    person=person.attrib.get("id", "?"),
                    left=_point(person.find("leftEye"), "leftEye", path, number),
                    right=_point(person.find("rightEye"), "rightEye", path, number),
                )
            )
    return found


def find_sequences(root: Path) -> list[Sequence]:
    """Every folder at or under ``root`` that holds frame images, paired with its XML when one exists.

    The XML is looked for in a ``groundtruth/`` folder at the root or up to two levels above the
    frames (so a single sequence folder can be given), then beside and inside the frame folder.
    """
    if not root.is_dir():
        raise DataError(f"chokepoint data folder not found: {root}")
    seqs = []
    for d in sorted([root, *(p for p in root.rglob("*") if p.is_dir())]):
        if d.name == "groundtruth" or not any(f.suffix.lower() in FRAME_SUFFIXES for f in d.iterdir()):
            continue
        name = f"{d.name}.xml"
        candidates = [root / "groundtruth" / name, d.parent / "groundtruth" / name]
        candidates += [d.parent.parent / "groundtruth" / name, d.parent / name, d / name]
        xml = next((x for x in candidates if x.is_file()), None)
        session = d.parent.name if d != root and d.parent != root else d.name
        seqs.append(Sequence(name=d.name, frames_dir=d, xml=xml, session=session))
    if not seqs:
        raise DataError(f"{root}: no ChokePoint sequence folders (folders of .jpg frames) found")
    return seqs
