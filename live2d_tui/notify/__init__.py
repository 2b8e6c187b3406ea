"""Where alerts go besides the app and the session log: a facility's command hook
(:mod:`.hook`, run by the supervisor for the UI and ``live2d run`` alike) and desktop
notifications through the terminal (:mod:`.osc`, the escape sequences; the UI sends them
through Textual's driver). Imports only the shared ground floor."""
