package ec2test

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"hash/fnv"
	"io"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	pec2 "github.com/packit/packit-launch/provision/ec2"
)

// FakeEC2 is an in-memory EC2 endpoint for scale tests, where moto is far
// too slow (see provision/ec2's scale_bench_test.go). It speaks the EC2
// query protocol for two read actions only, DescribeInstances and
// DescribeLaunchTemplates, with "tag:<key>" and "instance-state-name"
// filters, and pages the way EC2 documents: MaxResults counts items
// (instances, templates) after filtering, must lie in 5..1000 (instances)
// or 1..200 (templates), and NextToken is opaque and bound to the request's
// filters. EC2 may also answer a short page before the last; the fake never
// does, so the calls it sees are the fewest EC2 would allow. Every instance
// is its own reservation, as the Launch service's one-instance launches
// are. Anything else it is sent (another action, parameter or filter) is
// refused, so that a change to the bot's calls fails loudly here instead of
// being half answered.
//
// State is seeded directly (AddTemplate, AddInstance, AddManagedVM), not
// through the API.
//
// With Fallback set, a request for any other action is passed to it
// instead (say a reverse proxy to moto_server), so that a real bot process
// can run against the fake's big fleet. The fake's fleet stays what it was
// seeded with: templates and instances created through the fallback do
// not appear in the fake's listings, and the fake's never reach the
// fallback. A Describe call the fake refuses (by instance id or template
// name, say) is still refused, not passed on.
type FakeEC2 struct {
	// Fallback, when set, answers the actions the fake does not implement.
	// Set it before serving.
	Fallback http.Handler

	mu        sync.Mutex
	templates []*fakeTemplate
	instances []*fakeInstance
	next      int
	epoch     time.Time
	// byTag indexes instances by tag key and value (built when needed), so
	// that a filtered page costs about its matches, as in EC2, and a
	// benchmark measures the bot rather than the fake.
	byTag map[string]map[string][]*fakeInstance
	// latency delays each answer after the request is read (see SetLatency).
	latency time.Duration
	// served counts the instance records DescribeInstances has answered with.
	served int
	// answers are the actions the fake answers itself.
	answers map[string]bool
	// console is each instance's console output (SetConsoleOutput).
	console map[string]string
}

type fakeTemplate struct {
	id, name string
	created  time.Time
	tags     map[string]string
	tagSet   string // tags as XML
}

type fakeInstance struct {
	seq                    int
	id, reservation, state string
	launched               time.Time
	privateIP, publicIP    string
	tags                   map[string]string
	tagSet                 string // tags as XML
}

// NewFakeEC2 returns an empty fake.
func NewFakeEC2() *FakeEC2 {
	return &FakeEC2{epoch: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		answers: map[string]bool{"DescribeInstances": true, "DescribeLaunchTemplates": true, "GetConsoleOutput": true},
		console: map[string]string{}}
}

// NewConsoleFake returns a fake that answers GetConsoleOutput only and
// passes every other action to fallback (say moto_server, whose console
// output is one fixed boot log for every instance): tests seed each VM's
// boot log, cloud-init's host keys in it, with SetConsoleOutput.
func NewConsoleFake(fallback http.Handler) *FakeEC2 {
	f := NewFakeEC2()
	f.Fallback, f.answers = fallback, map[string]bool{"GetConsoleOutput": true}
	return f
}

// SetConsoleOutput sets what GetConsoleOutput returns for an instance.
// An instance without one has no output yet, as EC2 answers before the
// console's first update; the fake does not check that the instance exists.
func (f *FakeEC2) SetConsoleOutput(instanceID, text string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.console[instanceID] = text
}

// SetEpoch sets when the next item is created; each one after it is a
// second younger (the default epoch is 2026-01-01). A real bot's sweeper
// ends VMs older than their profile allows: seed a fleet it should keep
// with an epoch of a little while ago.
func (f *FakeEC2) SetEpoch(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.epoch = t.Add(-time.Duration(f.next) * time.Second)
}

// SetLatency delays each of the fake's own answers by d (0 turns it off),
// as a round trip would. Without it a local endpoint answers within the
// SDK's request-body race and the SDK retries often
// (aws/aws-sdk-go-v2#2737), and the retries' back-off skews timings.
// Answers from Fallback are not delayed.
func (f *FakeEC2) SetLatency(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.latency = d
}

// AddTemplate adds a launch template and returns its id.
func (f *FakeEC2) AddTemplate(name string, tags map[string]string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next++
	t := &fakeTemplate{id: fmt.Sprintf("lt-%017x", f.next), name: name, created: f.epoch.Add(time.Duration(f.next) * time.Second), tags: maps.Clone(tags)}
	t.tagSet = tagSetXML(t.tags)
	f.templates = append(f.templates, t)
	return t.id
}

// AddInstance adds an instance in state (pending, running, stopped,
// terminated...) and returns its id. A templateID adds the
// aws:ec2launchtemplate:* tags EC2 itself puts on an instance launched from
// a template.
func (f *FakeEC2) AddInstance(templateID string, tags map[string]string, state string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next++
	in := &fakeInstance{
		seq:         f.next,
		id:          fmt.Sprintf("i-%017x", f.next),
		reservation: fmt.Sprintf("r-%017x", f.next),
		state:       state,
		launched:    f.epoch.Add(time.Duration(f.next) * time.Second),
		privateIP:   fmt.Sprintf("10.%d.%d.%d", f.next>>16&0xff, f.next>>8&0xff, f.next&0xff),
		publicIP:    fmt.Sprintf("198.%d.%d.%d", 18+f.next>>16&1, f.next>>8&0xff, f.next&0xff),
		tags:        maps.Clone(tags),
	}
	if in.tags == nil {
		in.tags = map[string]string{}
	}
	if templateID != "" {
		in.tags[pec2.TagTemplateOf] = templateID
		in.tags["aws:ec2launchtemplate:version"] = "1"
	}
	in.tagSet = tagSetXML(in.tags)
	f.instances = append(f.instances, in)
	f.byTag = nil
	return in.id
}

// AddManagedVM adds a launch's VM as the bot leaves it: its per-launch
// template "packit-launch-<launchID>" and one running instance launched
// from it, both carrying tags plus TagManaged=true and TagLaunch=launchID,
// as ec2.CreateLaunchTemplate and the bot's TagInstance put them. Pass the
// launch's birth tags (provision.BirthTags) as tags. ec2.ListManaged
// returns the instance, and ec2.ListManagedTemplates the template.
func (f *FakeEC2) AddManagedVM(launchID string, tags map[string]string) (instanceID, templateID string) {
	tags = maps.Clone(tags)
	if tags == nil {
		tags = map[string]string{}
	}
	tags[pec2.TagManaged] = "true"
	tags[pec2.TagLaunch] = launchID
	templateID = f.AddTemplate("packit-launch-"+launchID, tags)
	return f.AddInstance(templateID, tags, "running"), templateID
}

// TakeServed returns how many instance records DescribeInstances has
// answered with since the last call.
func (f *FakeEC2) TakeServed() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.served
	f.served = 0
	return n
}

// fakeError is an EC2 error answer.
type fakeError struct{ code, msg string }

var (
	filterParamRE = regexp.MustCompile(`^Filter\.(\d+)\.(Name|Value\.\d+)$`)
	stateCodes    = map[string]int{"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80}
)

func (f *FakeEC2) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	form, err := url.ParseQuery(string(body))
	action := form.Get("Action")
	implemented := err == nil && f.answers[action]
	if !implemented && f.Fallback != nil {
		// The fallback reads the body again (a reverse proxy forwards it
		// by its length), so put it back as it came.
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		f.Fallback.ServeHTTP(w, r)
		return
	}
	if err != nil {
		writeFakeError(w, fakeError{"MalformedQueryString", err.Error()})
		return
	}
	var (
		out  string
		ferr *fakeError
	)
	switch action {
	case "DescribeInstances":
		out, ferr = f.describeInstances(form)
	case "DescribeLaunchTemplates":
		out, ferr = f.describeLaunchTemplates(form)
	case "GetConsoleOutput":
		out, ferr = f.consoleOutput(form)
	default:
		ferr = &fakeError{"InvalidAction", "the fake EC2 does not answer " + action}
	}
	f.mu.Lock()
	latency := f.latency
	f.mu.Unlock()
	time.Sleep(latency)
	if ferr != nil {
		writeFakeError(w, *ferr)
		return
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	_, _ = io.WriteString(w, out)
}

// consoleOutput answers GetConsoleOutput as EC2 does: the output
// base64-encoded, none while the instance has none.
func (f *FakeEC2) consoleOutput(form url.Values) (string, *fakeError) {
	id := form.Get("InstanceId")
	for k := range form {
		if k != "Action" && k != "Version" && k != "InstanceId" {
			return "", &fakeError{"UnknownParameter", "the fake EC2 does not take " + k}
		}
	}
	if !strings.HasPrefix(id, "i-") {
		return "", &fakeError{"InvalidInstanceID.Malformed", fmt.Sprintf("Invalid id: %q", id)}
	}
	f.mu.Lock()
	text, ok := f.console[id]
	f.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<GetConsoleOutputResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>fake</requestId><instanceId>%s</instanceId>`, xmlText(id))
	if ok {
		fmt.Fprintf(&b, "<timestamp>%s</timestamp><output>%s</output>", time.Now().UTC().Format(time.RFC3339), base64.StdEncoding.EncodeToString([]byte(text)))
	}
	b.WriteString("</GetConsoleOutputResponse>")
	return b.String(), nil
}

func writeFakeError(w http.ResponseWriter, e fakeError) {
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(http.StatusBadRequest)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n<Response><Errors><Error><Code>%s</Code><Message>%s</Message></Error></Errors><RequestID>fake</RequestID></Response>",
		xmlText(e.code), xmlText(e.msg))
}

// request is a Describe call's filters and paging, checked as EC2 checks them.
type request struct {
	filters    map[string][]string // name -> values (OR); filters AND
	sets       map[string]map[string]bool
	maxResults int // 0: all
	offset     int // from NextToken
}

// parseRequest reads filters, MaxResults (allowed in [minMax, maxMax]) and NextToken.
func parseRequest(form url.Values, filterOK func(string) bool, minMax, maxMax int) (request, *fakeError) {
	req := request{filters: map[string][]string{}, sets: map[string]map[string]bool{}}
	names := map[string]string{}
	values := map[string][]string{}
	for k, v := range form {
		switch k {
		case "Action", "Version", "MaxResults", "NextToken":
			continue
		}
		m := filterParamRE.FindStringSubmatch(k)
		if m == nil {
			return req, &fakeError{"UnknownParameter", "the fake EC2 does not take " + k}
		}
		if m[2] == "Name" {
			names[m[1]] = v[0]
		} else {
			values[m[1]] = append(values[m[1]], v[0])
		}
	}
	for n, name := range names {
		if _, dup := req.filters[name]; dup {
			return req, &fakeError{"InvalidParameterCombination", fmt.Sprintf("The filter '%s' is given twice", name)}
		}
		if !filterOK(name) {
			return req, &fakeError{"InvalidParameterValue", fmt.Sprintf("The filter '%s' is invalid", name)}
		}
		if len(values[n]) == 0 {
			return req, &fakeError{"InvalidParameterValue", fmt.Sprintf("The filter '%s' has no values", name)}
		}
		req.filters[name] = values[n]
		req.sets[name] = map[string]bool{}
		for _, v := range values[n] {
			req.sets[name][v] = true
		}
	}
	if s := form.Get("MaxResults"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < minMax || n > maxMax {
			return req, &fakeError{"InvalidParameterValue", fmt.Sprintf("Value ( %s ) for parameter maxResults is invalid. Expecting a value between %d and %d.", s, minMax, maxMax)}
		}
		req.maxResults = n
	}
	if tok := form.Get("NextToken"); tok != "" {
		off, sum, ok := strings.Cut(tok, ".")
		n, err := strconv.Atoi(off)
		if !ok || err != nil || n <= 0 || sum != req.fingerprint(form.Get("Action")) {
			return req, &fakeError{"InvalidParameterValue", "Invalid value '" + tok + "' for nextToken"}
		}
		req.offset = n
	}
	return req, nil
}

// fingerprint binds a token to the action and filters it was made for.
func (r request) fingerprint(action string) string {
	h := fnv.New64a()
	io.WriteString(h, action)
	for _, k := range slices.Sorted(maps.Keys(r.filters)) {
		io.WriteString(h, "\x00"+k)
		for _, v := range slices.Sorted(slices.Values(r.filters[k])) {
			io.WriteString(h, "\x01"+v)
		}
	}
	return strconv.FormatUint(h.Sum64(), 36)
}

// page cuts one page of n matching items; next is "" on the last one.
func (r request) page(n int, action string) (from, to int, next string) {
	from = min(r.offset, n)
	to = n
	if r.maxResults > 0 && from+r.maxResults < n {
		to = from + r.maxResults
		next = strconv.Itoa(to) + "." + r.fingerprint(action)
	}
	return from, to, next
}

func tagFilter(name string) (key string, ok bool) { return strings.CutPrefix(name, "tag:") }

func matches(filters map[string]map[string]bool, tags map[string]string, state string) bool {
	for name, values := range filters {
		var have string
		var ok bool
		if key, isTag := tagFilter(name); isTag {
			have, ok = tags[key]
		} else {
			have, ok = state, true // instance-state-name, the only other filter allowed
		}
		if !ok || !values[have] {
			return false
		}
	}
	return true
}

func (f *FakeEC2) describeInstances(form url.Values) (string, *fakeError) {
	req, ferr := parseRequest(form, func(name string) bool {
		_, isTag := tagFilter(name)
		return isTag || name == "instance-state-name"
	}, 5, 1000)
	if ferr != nil {
		return "", ferr
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var hits []*fakeInstance
	for _, in := range f.candidates(req) {
		if matches(req.sets, in.tags, in.state) {
			hits = append(hits, in)
		}
	}
	from, to, next := req.page(len(hits), "DescribeInstances")
	f.served += to - from

	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>fake</requestId><reservationSet>`)
	for _, in := range hits[from:to] {
		fmt.Fprintf(&b, "<item><reservationId>%s</reservationId><ownerId>123456789012</ownerId><groupSet/><instancesSet><item>", in.reservation)
		fmt.Fprintf(&b, "<instanceId>%s</instanceId><imageId>ami-12c6146b</imageId><instanceState><code>%d</code><name>%s</name></instanceState>",
			in.id, stateCodes[in.state], in.state)
		fmt.Fprintf(&b, "<privateIpAddress>%s</privateIpAddress><instanceType>t3.micro</instanceType><launchTime>%s</launchTime>",
			in.privateIP, in.launched.Format(time.RFC3339))
		if in.state == "running" {
			fmt.Fprintf(&b, "<ipAddress>%s</ipAddress><dnsName>ec2-%s.compute-1.amazonaws.com</dnsName>", in.publicIP, strings.ReplaceAll(in.publicIP, ".", "-"))
		}
		b.WriteString(in.tagSet)
		b.WriteString("</item></instancesSet></item>")
	}
	b.WriteString("</reservationSet>")
	if next != "" {
		fmt.Fprintf(&b, "<nextToken>%s</nextToken>", next)
	}
	b.WriteString("</DescribeInstancesResponse>")
	return b.String(), nil
}

func (f *FakeEC2) describeLaunchTemplates(form url.Values) (string, *fakeError) {
	req, ferr := parseRequest(form, func(name string) bool { _, isTag := tagFilter(name); return isTag }, 1, 200)
	if ferr != nil {
		return "", ferr
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var hits []*fakeTemplate
	for _, t := range f.templates {
		if matches(req.sets, t.tags, "") {
			hits = append(hits, t)
		}
	}
	from, to, next := req.page(len(hits), "DescribeLaunchTemplates")

	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<DescribeLaunchTemplatesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>fake</requestId><launchTemplates>`)
	for _, t := range hits[from:to] {
		fmt.Fprintf(&b, "<item><launchTemplateId>%s</launchTemplateId><launchTemplateName>%s</launchTemplateName><createTime>%s</createTime>",
			t.id, xmlText(t.name), t.created.Format(time.RFC3339))
		b.WriteString("<createdBy>arn:aws:iam::123456789012:user/fake</createdBy><defaultVersionNumber>1</defaultVersionNumber><latestVersionNumber>1</latestVersionNumber>")
		b.WriteString(t.tagSet)
		b.WriteString("</item>")
	}
	b.WriteString("</launchTemplates>")
	if next != "" {
		fmt.Fprintf(&b, "<nextToken>%s</nextToken>", next)
	}
	b.WriteString("</DescribeLaunchTemplatesResponse>")
	return b.String(), nil
}

// candidates are the instances that may match req, in launch order: those
// with a tag filter's key and values, or all. The caller holds f.mu.
func (f *FakeEC2) candidates(req request) []*fakeInstance {
	for name, values := range req.sets {
		key, isTag := tagFilter(name)
		if !isTag {
			continue
		}
		if f.byTag == nil {
			f.byTag = map[string]map[string][]*fakeInstance{}
			for _, in := range f.instances {
				for k, v := range in.tags {
					if f.byTag[k] == nil {
						f.byTag[k] = map[string][]*fakeInstance{}
					}
					f.byTag[k][v] = append(f.byTag[k][v], in)
				}
			}
		}
		var out []*fakeInstance
		for v := range values {
			out = append(out, f.byTag[key][v]...)
		}
		slices.SortFunc(out, func(a, b *fakeInstance) int { return a.seq - b.seq })
		return out
	}
	return f.instances
}

func tagSetXML(tags map[string]string) string {
	var b strings.Builder
	b.WriteString("<tagSet>")
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		fmt.Fprintf(&b, "<item><key>%s</key><value>%s</value></item>", xmlText(k), xmlText(tags[k]))
	}
	b.WriteString("</tagSet>")
	return b.String()
}

func xmlText(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// Tags holds m's tags as a listing gives them, in key order.
func Tags(m map[string]string) pec2.Tags {
	out := make(pec2.Tags, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, pec2.Tag{Key: k, Value: m[k]})
	}
	return out
}
