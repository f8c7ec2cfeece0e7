from codit.cli.main import main

raise SystemExit(main())
