package review13

import (
	"fmt"
	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

type actorPID = actor.PID

func observedLogger() (*observer.ObservedLogs, *zap.Logger) {
	core, logs := observer.New(zapcore.DebugLevel)
	return logs, zap.New(core)
}

func fieldsOf(m map[string]interface{}) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+fmtAny(v))
	}
	return out
}

func fmtAny(v interface{}) string { return fmt.Sprintf("%+v", v) }
