"""File formats and the refine2d/merge2d protocol: the ground floor every other package uses.

One module per format, reader and writer together, so a format's rules live in one place:

- :mod:`.mrc`: the MRC2014 header (both byte orders), its writer, and slice reads;
- :mod:`.cistem_star`: cisTEM's 22-column text star (refine2d's input and output);
- :mod:`.cistem_binary`: cisTEM's binary ``.cistem`` parameter file;
- :mod:`.relion_star`: the RELION 3.1 star beside the combined stack;
- :mod:`.warp_star`: Warp's particle tables (RELION 3.0 dialect, streaming reader, writer);
- :mod:`.warp_xml`: Warp's XML files (``previous.settings``, per-movie XML), reader and writer;
- :mod:`.prompts` / :mod:`.protocol`: cisTEM's stdin protocol: the prompt tables, and the
  answer lists, validated — spoken by the cycle runner (:mod:`live2d_tui.classify`) and
  answered by the built-in engine (:mod:`live2d_tui.engine`), which never import each other;
- :mod:`.live2d_dump`: our engine's dump file (a refine2d job's class sums, read by our merge2d);
- :mod:`.dumps`: both engines' dump files (cisTEM's raw layout and ours) as one float64 model that
  adds and subtracts, and the streaming runner's running total;
- :mod:`.engine_rules`: the frozen-rules side file through which the streaming runner gives our
  refine2d the whole classification's decisions (cisTEM ignores it).

Nothing here imports a package above it (only :mod:`live2d_tui.atomic` for durable writes);
``tests/core/test_headless_core.py`` checks the layering.
"""
