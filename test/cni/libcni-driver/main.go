// libcni-driver runs one CNI operation on a conflist through libcni, the
// library container runtimes embed (built at test time in GOPATH mode against
// Debian's golang-github-appc-cni-dev). Usage:
//
//	libcni-driver add|check|del CONFLIST CONTAINER_ID NETNS IFNAME CACHE_DIR [PORTMAPPINGS_JSON]
//
// CNI_PATH (colon-separated) names the plugin directories. add prints the
// result as JSON on stdout; errors go to stderr with exit status 1.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containernetworking/cni/libcni"
)

func fail(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", a...)
	os.Exit(1)
}

func main() {
	if len(os.Args) < 7 {
		fail("usage: libcni-driver add|check|del CONFLIST CONTAINER_ID NETNS IFNAME CACHE_DIR [PORTMAPPINGS_JSON]")
	}
	op, confFile, containerID, netns, ifname, cacheDir := os.Args[1], os.Args[2], os.Args[3], os.Args[4], os.Args[5], os.Args[6]
	list, err := libcni.ConfListFromFile(confFile)
	if err != nil {
		fail("loading %s: %v", confFile, err)
	}
	rt := &libcni.RuntimeConf{
		ContainerID: containerID,
		NetNS:       netns,
		IfName:      ifname,
		// what kubelet passes
		Args: [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", "default"}, {"K8S_POD_NAME", containerID}, {"K8S_POD_INFRA_CONTAINER_ID", containerID}},
	}
	if len(os.Args) > 7 {
		var pm []map[string]interface{}
		if err := json.Unmarshal([]byte(os.Args[7]), &pm); err != nil {
			fail("port mappings: %v", err)
		}
		rt.CapabilityArgs = map[string]interface{}{"portMappings": pm}
	}
	cni := libcni.NewCNIConfigWithCacheDir(filepath.SplitList(os.Getenv("CNI_PATH")), cacheDir, nil)
	ctx := context.Background()
	switch op {
	case "add":
		res, err := cni.AddNetworkList(ctx, list, rt)
		if err != nil {
			fail("ADD: %v", err)
		}
		if err := res.Print(); err != nil {
			fail("printing the result: %v", err)
		}
	case "check":
		if err := cni.CheckNetworkList(ctx, list, rt); err != nil {
			fail("CHECK: %v", err)
		}
	case "del":
		if err := cni.DelNetworkList(ctx, list, rt); err != nil {
			fail("DEL: %v", err)
		}
	default:
		fail("unknown operation %q", op)
	}
}
