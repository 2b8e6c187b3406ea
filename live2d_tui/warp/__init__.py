"""Reading Warp's session folder safely: settings, per-movie XML, particle stars, snapshots."""
