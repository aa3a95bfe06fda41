module github.com/events-cache/events-cache/clients/go

go 1.19
