from evse_ev.cli import main

raise SystemExit(main())
