from llm_log_exporter.cli import main

main()
