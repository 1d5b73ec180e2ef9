from dwrseg_rt.cli import main

main()
