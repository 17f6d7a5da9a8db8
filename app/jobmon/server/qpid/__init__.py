"""The qpid integration: peak memory (max RSS) and wallclock of finished Grid Engine jobs, from the site's
"qpid" accounting database onto Jobmon's task instances (``jobmon-qpid``), and the collector that fills a
qpid database from Grid Engine's accounting file (``jobmon-qpid-collector``)."""
