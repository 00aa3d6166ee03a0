// The `superficial` command line. Commands are added as the stages land.
return 0;
