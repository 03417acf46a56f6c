from pgwarden.cli import main

main()
