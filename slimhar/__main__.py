from slimhar.cli import main

main()
