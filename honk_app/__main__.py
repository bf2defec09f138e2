from honk_app.cli import main

main()
