from web.realtime.server import main

main()
