"""Run a simulated Warp live session: movie after movie, the files Warp writes, in Warp's order.

Per movie (``<root>`` = a FoilHole-style name, ``<Model>`` from ``Picking/ModelPath``):
1. the truth star for the movie (so a scorer running mid-session finds every named particle);
2. ``<root>.xml``, ``particles/<root>_<Model>.mrcs`` (header, then slices, in place),
   ``matching/<root>_<Model>.star``;
3. ``allparticles_<Model>.star`` and ``goodparticles_<Model>.star`` rewritten completely (temp
   file ``<target>_<root>``, delete, move), then the ``_last10000_`` variants in place;
4. only now is the movie's filter result known: a movie failing a filter is in the good table
   exactly once (it vanishes at the next rewrite), as in Warp.
When the session stops, both tables are rewritten once more (temp file ``<target>_temp``).

Randomness: every draw comes from a generator seeded with (seed, movie index, purpose), so a
movie's content does not depend on which hazards are switched on, and a seed reproduces every
byte. Live mode (``rate`` > 0) sleeps between movies and holds each hazard's window open for a
while (``stop`` ends the session early, after a final rewrite).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from live2d_tui.formats.warp_star import star_text
from live2d_tui.simulate import documents as docs
from live2d_tui.simulate.options import CHANGED_MODEL, SimulationOptions
from live2d_tui.simulate.particles import draw_micrograph_ctf, draw_particles, render_particles
from live2d_tui.simulate.phantom import Phantom, fibonacci_views, make_phantom, project
from live2d_tui.simulate.records import (
    MovieRecord,
    SimEvent,
    SimulationSummary,
    choose,
    movie_root,
    rng_for,
)
from live2d_tui.simulate.truth import (
    write_micrograph_truth,
    write_phantom,
    write_references,
    write_session_truth,
)
from live2d_tui.simulate.warp_writer import (
    replace_like_warp,
    write_in_place,
    write_last_window,
    write_stack,
)

RUNNING_WINDOW = 10000
"""``Picking/RunningWindowLength``: rows in the ``_last10000_`` tables."""

WINDOWS_FOLDER = "D:\\EPU\\live2d_simulated\\"
"""``Import/Folder`` of Warp 1 sessions (a Windows path with its trailing backslash)."""

HAZARD_DELAY = 2
"""Movies between a movie and its later manual deselection or reprocessing."""

_SALT_CTF, _SALT_PARTICLES, _SALT_NOISE, _SALT_MISC, _SALT_HAZARDS = 1, 2, 3, 4, 5


class _Session:
    def __init__(
        self,
        out: Path,
        opts: SimulationOptions,
        stop: threading.Event | None,
        on_event: Callable[[SimEvent], None] | None,
    ) -> None:
        self.opts = opts
        self.folder = Path(out)
        self.out = self.folder / opts.processing_folder if opts.processing_folder else self.folder
        self.truth_dir = self.folder / "truth"
        self.stop = stop
        self.on_event = on_event
        self.phantom: Phantom = make_phantom(opts.diameter, opts.phantom_seed)
        self.movies: list[MovieRecord] = []
        self.settings_revision = 0
        self.summary = SimulationSummary(
            folder=self.folder, output_folder=self.out, truth_dir=self.truth_dir
        )
        n = opts.micrographs
        hazard_rng = rng_for(opts.seed, -1, _SALT_HAZARDS)
        self.vanishing = choose(hazard_rng, opts.vanishing, n)
        self.unselect = choose(hazard_rng, opts.unselect_later, n - HAZARD_DELAY)
        self.reprocess = choose(hazard_rng, opts.reprocess, n - HAZARD_DELAY)

    # --- helpers ---------------------------------------------------------------------------

    def emit(self, kind: str, index: int, path: Path | None = None) -> None:
        if self.on_event is not None:
            self.on_event(SimEvent(kind, index, path))

    def hold(self, seconds: float) -> None:
        """Keep a hazard's window open for a while in live mode."""
        if seconds > 0:
            if self.stop is not None:
                self.stop.wait(seconds)
            else:
                threading.Event().wait(seconds)

    @property
    def window(self) -> float:
        return 0.4 * self.opts.rate

    def geometry(self, index: int) -> docs.Geometry:
        o = self.opts
        box = o.box
        if o.change_box_at is not None and index >= o.change_box_at:
            box = (o.box + o.box // 4 + 1) // 2 * 2
        bin_times = o.bin_times
        if o.change_binning_at is not None and index >= o.change_binning_at:
            bin_times = o.bin_times + 1.0
        model = o.model
        if o.change_model_at is not None and index >= o.change_model_at:
            model = CHANGED_MODEL
        return docs.Geometry(
            box=box,
            bin_times=bin_times,
            unbinned_pixel=o.pixel_size / 2.0**o.bin_times,
            model=model,
            diameter=round(o.diameter),
            invert=o.invert,
        )

    def model_of(self, geometry: docs.Geometry) -> str:
        return docs.model_name(geometry.model, warp2=self.opts.warp2)

    def stack_name(self, movie: MovieRecord) -> str:
        return f"{movie.root}_{self.model_of(movie.geometry)}.mrcs"

    # --- documents -------------------------------------------------------------------------

    def write_settings(self, geometry: docs.Geometry, index: int) -> None:
        o = self.opts
        data = docs.settings_document(
            geometry,
            voltage=o.voltage,
            cs=o.cs,
            amplitude_contrast=o.amplitude_contrast,
            phase_plate=o.phase_plate,
            warp2=o.warp2,
            # W1 runs on Windows: its folder is a Windows path readers must ignore; W2 may run
            # on Linux (WarpTools) next to the data, so it names the real folders
            data_folder=str(self.folder.resolve()) + "/" if o.warp2 else WINDOWS_FOLDER,
            processing_folder=str(self.out.resolve()) if o.processing_folder else None,
            revision=self.settings_revision,
        )
        path = self.folder / "previous.settings"
        torn = None
        if o.torn_settings and path.exists():

            def torn() -> None:
                self.emit("settings_torn", index, path)
                self.hold(self.window)

        write_in_place(path, data, torn_hook=torn)
        self.settings_revision += 1
        self.emit("settings_written", index, path)

    def write_movie_xml(self, movie: MovieRecord) -> None:
        o = self.opts
        data = docs.movie_document(
            movie.geometry,
            movie.ctf,
            voltage=o.voltage,
            cs=o.cs,
            amplitude_contrast=o.amplitude_contrast,
            unselect_manual=movie.unselect_manual,
            motion=round(0.8 + 0.1 * (movie.index % 7), 2),
            warp2=o.warp2,
            data_directory=str(self.folder.resolve()) if o.warp2 else None,
            picking_suffix=f"_{self.model_of(movie.geometry)}",
        )
        write_in_place(self.out / f"{movie.root}.xml", data)

    def process(self, movie: MovieRecord, *, after_stack: Callable[[], None] | None = None) -> None:
        """Render and write one movie's XML, stack, picks and truth."""
        o = self.opts
        g = movie.geometry
        stack_name = self.stack_name(movie)
        names = [docs.image_name(i + 1, stack_name) for i in range(len(movie.params))]
        write_micrograph_truth(
            self.truth_dir,
            stack_name,
            names,
            movie.params,
            pixel_size=g.pixel_size,
            micrograph_index=movie.index,
        )
        images = render_particles(
            self.phantom,
            movie.params,
            rng_for(o.seed, movie.index, _SALT_NOISE, movie.revision),
            box=g.box,
            pixel_size=g.pixel_size,
            diameter=float(g.diameter),
            snr=o.snr,
            voltage=o.voltage,
            cs=o.cs,
            amplitude_contrast=o.amplitude_contrast,
            bfactor=o.bfactor,
            invert=g.invert,
        )
        self.write_movie_xml(movie)
        matching = star_text(
            docs.MATCHING_COLUMNS, docs.matching_rows(movie.params, f"{movie.root}.mrc")
        )
        write_in_place(self.out / "matching" / f"{movie.root}_{self.model_of(g)}.star",
                       matching.encode("utf-8"))  # fmt: skip
        stack_path = self.out / "particles" / stack_name
        hook = None
        if after_stack is not None:

            def hook() -> None:
                after_stack()
                self.emit("stack_partial", movie.index, stack_path)
                self.hold(self.window)

        write_stack(stack_path, images, g.pixel_size, float16=o.warp2, partial_hook=hook)
        self.summary.particles += len(movie.params)

    def draw(self, index: int, revision: int = 0, avoid_count: int | None = None) -> MovieRecord:
        o = self.opts
        g = self.geometry(index)
        bad = index in self.vanishing
        ctf = draw_micrograph_ctf(
            rng_for(o.seed, index, _SALT_CTF),
            defocus_min=o.defocus_min,
            defocus_max=o.defocus_max,
            phase_plate=o.phase_plate,
            bad=bad,
        )
        misc = rng_for(o.seed, index, _SALT_MISC, revision)
        mean = o.particles_per_micrograph
        count = int(misc.integers(max(1, round(0.75 * mean)), round(1.25 * mean) + 1))
        if avoid_count is not None and count == avoid_count:
            count = avoid_count + 1 if avoid_count < 2 or misc.uniform() < 0.5 else avoid_count - 1
        params = draw_particles(
            rng_for(o.seed, index, _SALT_PARTICLES, revision),
            count,
            ctf,
            views=o.views,
            view_jitter=o.view_jitter,
            max_shift_px=o.max_shift,
            pixel_size=g.pixel_size,
            micrograph_px=g.micrograph_px,
            box=g.box,
        )
        return MovieRecord(index, movie_root(index), g, ctf, params, bad, revision=revision)

    # --- the particle tables ---------------------------------------------------------------

    def rewrite_tables(self, label: str, index: int) -> None:
        """Rewrite all/goodparticles (and the running windows) of the current model: tables of
        an earlier model are left as they were when the model changed."""
        for model in self.summary.models[-1:]:
            movies = [m for m in self.movies if self.model_of(m.geometry) == model]
            all_rows: list[list[str]] = []
            good_rows: list[list[str]] = []
            for m in movies:
                if m.rows is None:
                    m.rows = docs.particle_rows(
                        m.params,
                        stack_name=self.stack_name(m),
                        micrograph_name=m.movie_name,
                        pixel_size=m.geometry.pixel_size,
                        voltage=self.opts.voltage,
                        cs=self.opts.cs,
                        amplitude_contrast=self.opts.amplitude_contrast,
                        resolution=m.ctf.resolution,
                    )
                rows = m.rows
                all_rows += rows
                if not m.filtered and m.unselect_manual is not True:
                    good_rows += rows
            for kind, rows in (("allparticles", all_rows), ("goodparticles", good_rows)):
                target = self.out / f"{kind}_{model}.star"
                text = star_text(docs.PARTICLE_COLUMNS, rows)
                replace_like_warp(
                    target,
                    text,
                    label,
                    gap_hook=self._gap_hook(target, index),
                    torn_hook=self._torn_hook(target, index) if kind == "goodparticles" else None,
                )
                if rows:  # Warp skips the running window of an empty table
                    write_last_window(
                        self.out / f"{kind}_last{RUNNING_WINDOW}_{model}.star",
                        star_text(docs.PARTICLE_COLUMNS, rows[-RUNNING_WINDOW:]),
                    )
                if kind == "goodparticles" and model == self.summary.models[-1]:
                    self.summary.good_particles = len(rows)

    def _gap_hook(self, target: Path, index: int) -> Callable[[], None] | None:
        if self.opts.star_gap <= 0 and self.on_event is None:
            return None

        def hook() -> None:
            self.emit("star_missing", index, target)
            self.hold(self.opts.star_gap)

        return hook

    def _torn_hook(self, target: Path, index: int) -> Callable[[], None] | None:
        if not self.opts.torn_star:
            return None

        def hook() -> None:
            self.emit("star_torn", index, target)
            self.hold(self.window)

        return hook

    # --- the session -----------------------------------------------------------------------

    def stopped(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    def run(self) -> SimulationSummary:
        o = self.opts
        for sub in ("particles", "matching"):
            (self.out / sub).mkdir(parents=True, exist_ok=True)
        geometry = self.geometry(0)
        self.summary.models.append(self.model_of(geometry))
        self.write_truth_header(first=True)
        self.write_settings(geometry, -1)
        for index in range(o.micrographs):
            if self.stopped():
                self.summary.stopped = True
                break
            self.step(index)
            if o.rate > 0 and index + 1 < o.micrographs:
                self.hold(o.rate)
        self.rewrite_tables("temp", -1)
        self.write_truth_header()
        self.emit("session_done", -1)
        return self.summary

    def step(self, index: int) -> None:
        new_geometry = self.geometry(index)
        if index > 0 and (new_geometry != self.geometry(index - 1) or self.opts.torn_settings):
            self.write_settings(new_geometry, index)
        # Warp reprocesses an outdated movie before it gets to the next new one
        for earlier in sorted(self.reprocess):
            if earlier + HAZARD_DELAY == index:
                old = self.movies[earlier]
                new = self.draw(earlier, revision=1, avoid_count=len(old.params))
                new.filtered, new.unselect_manual = old.filtered, old.unselect_manual
                new.geometry = old.geometry
                self.movies[earlier] = new
                self.process(new)
                self.summary.reprocessed.append(new.root)
                self.emit("reprocessed", earlier, self.out / "particles" / self.stack_name(new))
        movie = self.draw(index)
        self.movies.append(movie)
        model = self.model_of(movie.geometry)
        if model not in self.summary.models:
            self.summary.models.append(model)
        if self.opts.late_stacks:
            self.process(movie, after_stack=lambda: self.rewrite_tables(movie.root, index))
        else:
            self.process(movie)
            self.rewrite_tables(movie.root, index)
        # the filter verdict on the newest movie only counts from the next rewrite on
        if movie.bad:
            movie.filtered = True
            self.summary.vanished.append(movie.root)
        self.summary.micrographs += 1
        self.write_truth_header()
        self.emit("movie_done", index, self.out / "particles" / self.stack_name(movie))
        # a user deselects an earlier movie between two rewrites
        for earlier in sorted(self.unselect):
            if earlier + HAZARD_DELAY == index:
                target = self.movies[earlier]
                target.unselect_manual = True
                self.write_movie_xml(target)
                self.summary.unselected.append(target.root)
                self.emit("unselected", earlier, self.out / f"{target.root}.xml")

    def write_truth_header(self, *, first: bool = False) -> None:
        """``truth/session.json`` (rewritten after every movie, so a scorer running mid-session
        sees the current lists); the phantom and references once, at the start."""
        o = self.opts
        g0 = self.geometry(0)
        views = fibonacci_views(o.views)
        if first:
            write_phantom(self.truth_dir, self.phantom.to_json())
        geometries = sorted(
            {(self.geometry(i).box, self.geometry(i).pixel_size) for i in range(o.micrographs)}
            | {(g0.box, g0.pixel_size)}
        )
        write_session_truth(
            self.truth_dir,
            {
                "options": o.to_dict(),
                "views": [
                    {"id": k, "rot": float(r), "tilt": float(t)} for k, (r, t) in enumerate(views)
                ],
                "references": {"box": g0.box, "pixel_size": g0.pixel_size},
                "geometries": [{"box": b, "pixel_size": p} for b, p in geometries],
                "folder": str(self.out),
                "models": list(self.summary.models),
                "vanished": list(self.summary.vanished),
                "unselected": list(self.summary.unselected),
                "reprocessed": list(self.summary.reprocessed),
            },
        )
        if first and o.views > 0:
            refs = project(
                self.phantom,
                views[:, 0],
                views[:, 1],
                np.zeros(len(views)),
                box=g0.box,
                pixel_size=g0.pixel_size,
                bfactor=o.bfactor,
            )
            write_references(self.truth_dir, refs, g0.pixel_size)


def simulate_session(
    out: Path,
    opts: SimulationOptions,
    *,
    stop: threading.Event | None = None,
    on_event: Callable[[SimEvent], None] | None = None,
) -> SimulationSummary:
    """Write a simulated Warp session into ``out`` (created if needed); blocking.

    Args:
        out: the session folder (the folder holding the movies and ``previous.settings``).
        opts: the scenario.
        stop: set it to end a live session early (the tables still get their final rewrite).
        on_event: called synchronously at notable moments (see :class:`SimEvent`), e.g. while a
            star is missing or a stack is half-written, so tests can look at that state.

    Returns:
        What was written (see :class:`SimulationSummary`).
    """
    Path(out).mkdir(parents=True, exist_ok=True)
    return _Session(Path(out), opts, stop, on_event).run()
