"""Every movie Warp has processed, from its per-movie XML: when, and how well its CTF fitted.

:class:`MovieCatalog` lists the ``*.xml`` files of the folders that hold them (Warp 2's processing
folder first, then the Warp folder) and parses each file **once**: a file is read again only
when its ``(size, mtime)`` changed, so a scan of a session of 10,000 movies costs one directory
listing, one ``stat`` per XML and a parse of the new or rewritten ones. Nothing here writes
anything, and a scan never raises for one bad file: a torn XML (Warp rewrites them in place) keeps
the movie's last good reading, or waits for the next scan.

A movie's **time** is its XML's modification time when the catalog first read it (Warp's clock:
the time it processed the movie). A later rewrite (a deselection, a reprocessing) does not move
the movie on the time axis. Files whose root element is not ``<Movie>`` are remembered and
skipped.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from live2d_tui.formats.warp_xml import WarpFileError
from live2d_tui.warp.movie import MovieCTF, NotAMovie, parse_movie_xml
from live2d_tui.warp.snapshot import Signature


@dataclass(frozen=True, slots=True)
class MovieEntry:
    """One processed movie."""

    root: str
    """The movie's root name (its XML's name without ``.xml``)."""
    time: float
    """Seconds since the epoch: the XML's modification time when first read."""
    ctf: MovieCTF | None
    """Warp's CTF fit (``None``: not fitted yet)."""
    unselected: bool
    """``UnselectManual="True"``: the user (or Warp, after an error) excluded it."""


@dataclass(slots=True)
class CatalogScan:
    """What one :meth:`MovieCatalog.scan` found."""

    movies: list[MovieEntry] = field(default_factory=list)
    """Every movie known, in no particular order."""
    new: list[str] = field(default_factory=list)
    """Roots read for the first time in this scan."""
    parsed: int = 0
    """XML files read and parsed in this scan (new or rewritten)."""
    errors: list[str] = field(default_factory=list)
    """Files that could not be read or parsed this time (tried again at the next scan)."""


class MovieCatalog:
    """The movies of one Warp session, read from their XML (see the module docstring)."""

    def __init__(self, folders: Sequence[Path]) -> None:
        """A catalog that has not scanned yet.

        Args:
            folders: Where movie XML may be, in order of preference (a root found in an earlier
                folder hides the same root in a later one).
        """
        self.folders = [Path(f) for f in dict.fromkeys(folders)]
        self._known: dict[str, tuple[str, Signature, MovieEntry | None]] = {}
        """root → (file, signature last read, entry; ``None`` for a non-movie XML). Paths are
        kept as strings: comparing ``Path`` objects costs more than the ``stat`` itself."""

    def __len__(self) -> int:
        return sum(1 for _, _, entry in self._known.values() if entry is not None)

    def scan(self) -> CatalogScan:
        """List the folders and (re)read the XML whose signature changed (blocking)."""
        out = CatalogScan()
        seen: set[str] = set()
        for folder in self.folders:
            try:
                entries = list(os.scandir(folder))
            except OSError:
                continue  # a vanished or unreadable folder: nothing from it this time
            for item in entries:
                name = item.name
                if not name.endswith(".xml") or name.startswith("."):
                    continue
                root = name[:-4]
                if root in seen:
                    continue
                try:
                    st = item.stat()
                except OSError:
                    continue
                if not st.st_size:
                    continue  # truncated by a rewrite in progress
                seen.add(root)
                self._look(root, item.path, (st.st_size, st.st_mtime_ns), out)
        for root in [r for r in self._known if r not in seen]:
            del self._known[root]  # the XML is gone (Warp's folder was cleaned up)
        out.movies = [entry for _, _, entry in self._known.values() if entry is not None]
        return out

    def _look(self, root: str, path: str, signature: Signature, out: CatalogScan) -> None:
        known = self._known.get(root)
        if known is not None and known[0] == path and known[1] == signature:
            return
        try:
            data = Path(path).read_bytes()
            info = parse_movie_xml(data, path)
        except NotAMovie:
            self._known[root] = (path, signature, None)
            return
        except WarpFileError as exc:
            out.errors.append(str(exc))
            return
        except OSError as exc:
            out.errors.append(f"{path}: {exc.strerror or exc}")
            return
        out.parsed += 1
        previous = known[2] if known is not None else None
        time = previous.time if previous is not None else signature[1] / 1e9
        entry = MovieEntry(
            root=root, time=time, ctf=info.ctf, unselected=info.unselect_manual is True
        )
        if previous is None:
            out.new.append(root)
        self._known[root] = (path, signature, entry)
