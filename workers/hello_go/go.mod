module tqserver.local/workers/hello_go

go 1.19
