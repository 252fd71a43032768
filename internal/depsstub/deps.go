// Package depsstub pins dependencies until real code imports them. Temporary.
package depsstub

import (
	_ "github.com/alicebob/miniredis/v2"
	_ "github.com/bradleyfalzon/ghinstallation/v2"
	_ "github.com/getkin/kin-openapi/openapi3filter"
	_ "github.com/golang-jwt/jwt/v4"
	_ "github.com/google/go-github/v60/github"
	_ "github.com/gorilla/mux"
	_ "github.com/hibiken/asynq"
	_ "github.com/joho/godotenv"
	_ "github.com/redis/go-redis/v9"
	_ "go.yaml.in/yaml/v3"
	_ "golang.org/x/oauth2"
	_ "golang.org/x/oauth2/clientcredentials"
)
