/* SPDX-License-Identifier: MIT */
/*
 * thunderpass-activate: asks macOS to activate (or deactivate) the driver
 * extension embedded in the app bundle that contains this executable. A
 * dext can only be installed this way (OSSystemExtensionRequest from its
 * containing app, the app in /Applications); systemextensionsctl lists and
 * uninstalls but cannot install.
 *
 *   /Applications/Thunderpass.app/Contents/MacOS/thunderpass-activate
 *   /Applications/Thunderpass.app/Contents/MacOS/thunderpass-activate --deactivate
 */
#import <Foundation/Foundation.h>
#import <SystemExtensions/SystemExtensions.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static NSString *const kDext = @"org.thunderpass.driver";

@interface TPActivator : NSObject <OSSystemExtensionRequestDelegate>
@end

@implementation TPActivator
- (OSSystemExtensionReplacementAction)request:(OSSystemExtensionRequest *)request
		  actionForReplacingExtension:(OSSystemExtensionProperties *)existing
				withExtension:(OSSystemExtensionProperties *)ext
{
	printf("replacing driver extension %s with %s\n", existing.bundleShortVersion.UTF8String,
	       ext.bundleShortVersion.UTF8String);
	return OSSystemExtensionReplacementActionReplace;
}

- (void)requestNeedsUserApproval:(OSSystemExtensionRequest *)request
{
	printf("waiting for your approval: System Settings > Privacy & Security (macOS 13/14), or\n"
	       "General > Login Items & Extensions > Driver Extensions (macOS 15 and later)\n");
}

- (void)request:(OSSystemExtensionRequest *)request
	didFinishWithResult:(OSSystemExtensionRequestResult)result
{
	if (result == OSSystemExtensionRequestWillCompleteAfterReboot)
		printf("done; takes effect after a reboot\n");
	else
		printf("done\n");
	exit(0);
}

- (void)request:(OSSystemExtensionRequest *)request didFailWithError:(NSError *)error
{
	fprintf(stderr, "thunderpass-activate: %s (%s %ld)\n", error.localizedDescription.UTF8String,
		error.domain.UTF8String, (long)error.code);
	exit(1);
}
@end

int main(int argc, char **argv)
{
	@autoreleasepool {
		BOOL off = argc > 1 && strcmp(argv[1], "--deactivate") == 0;
		TPActivator *delegate = [TPActivator new];
		OSSystemExtensionRequest *req;

		if (argc > 1 && !off) {
			fprintf(stderr, "usage: thunderpass-activate [--deactivate]\n");
			return 2;
		}
		req = off ? [OSSystemExtensionRequest
				    deactivationRequestForExtension:kDext
							      queue:dispatch_get_main_queue()]
			  : [OSSystemExtensionRequest
				    activationRequestForExtension:kDext
							    queue:dispatch_get_main_queue()];
		req.delegate = delegate;
		[[OSSystemExtensionManager sharedManager] submitRequest:req];
		dispatch_main();
	}
}
