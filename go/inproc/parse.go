package main

/*
#include <stdlib.h>
*/
import "C"

import (
	"encoding/json"
	"net/http"
	"os"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	astJSON "github.com/open-policy-agent/opa/v1/ast/json"
	"github.com/open-policy-agent/opa/v1/server/types"
)

// astOptions guards OPA's process-wide AST JSON options: pg_parse turns locations on while it
// marshals, every other marshaller of an AST (pg_policies) holds the read lock.
var astOptions sync.RWMutex

// the JSON options of `opa parse --json-include locations` (cmd/parse.go)
var withLocations = astJSON.Options{
	MarshalOptions: astJSON.MarshalOptions{
		IncludeLocationText: true,
		IncludeLocation: astJSON.NodeToggle{
			Term: true, Package: true, Comment: true, Import: true, Rule: true, Head: true, Expr: true,
			SomeDecl: true, Every: true, With: true, Annotations: true, AnnotationsRef: true,
		},
	},
}

// pg_parse: `opa parse --format json --json-include locations,-comments FILE` of each file, in
// process (the load checks read every rule from it). The answer is {"modules": {file: AST},
// "failed": [file, ...]}: a file that does not parse is only named, for the caller to ask the opa
// binary, whose error message is the one policygate shows.
//
//export pg_parse
func pg_parse(files *C.char) (out *C.char) {
	defer guard(&out)
	var paths []string
	if err := json.Unmarshal([]byte(C.GoString(files)), &paths); err != nil {
		return reply(failure(http.StatusBadRequest, types.NewErrorV1(types.CodeInvalidParameter, "%s", err.Error())))
	}
	parsed := map[string]*ast.Module{}
	failed := []string{}
	opts := ast.ParserOptions{ProcessAnnotation: true, RegoVersion: ast.RegoV1}
	for _, path := range paths {
		raw, err := os.ReadFile(path)
		if err != nil {
			failed = append(failed, path)
			continue
		}
		m, err := ast.ParseModuleWithOpts(path, string(raw), opts)
		if err != nil || m == nil {
			failed = append(failed, path)
			continue
		}
		m.Comments = nil
		parsed[path] = m
	}
	astOptions.Lock()
	defer astOptions.Unlock()
	astJSON.SetOptions(withLocations)
	defer astJSON.SetOptions(astJSON.Defaults())
	return reply(map[string]any{"modules": parsed, "failed": failed})
}
